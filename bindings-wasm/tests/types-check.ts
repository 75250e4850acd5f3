// Type-checked (never run) against the package's declarations by `tsc -p tests`: the API
// as an application writes it, then misuses that the declarations must refuse.

import init, { Client, Subscription } from 'hubbub-client';
import type {
  ClientErrorCode,
  ClientOptions,
  ConnectionState,
  DirectMessage,
  ErrorCode,
  HubbubError,
  JsonValue,
  Message,
  ProtocolErrorCode,
  ReconnectOptions,
} from 'hubbub-client';

const reconnect: ReconnectOptions = { minDelayMs: 100, maxDelayMs: 5_000 };

const options: ClientOptions = {
  token: 'a.signed.jwt',
  reconnect,
  heartbeatMs: 10_000,
  onStateChange: (state: ConnectionState) => {
    const known: 'connecting' | 'connected' | 'disconnected' | 'closed' = state;
    console.log(known);
  },
  onError: (error: HubbubError) => {
    const code: ErrorCode = error.code;
    const reason: string | undefined = error.reason;
    const channel: string | undefined = error.channel;
    console.log(code, reason, channel, error.message);
  },
};

export async function app(): Promise<void> {
  await init();
  const client = new Client('ws://127.0.0.1:9772/ws', options);
  await client.connect();

  const sub: Subscription = await client.subscribe('room:1', (msg: Message) => {
    const channel: string = msg.channel;
    const event: string = msg.event;
    const data: JsonValue = msg.data;
    const offset: number | undefined = msg.offset;
    const from: string | undefined = msg.from;
    if (typeof data === 'object' && data !== null && !Array.isArray(data)) {
      const text: JsonValue | undefined = data.text;
      console.log(channel, event, text, offset, from);
    }
  });
  const subscribed: string = sub.channel;
  const left: void = await sub.unsubscribe();
  const sent: void = await client.broadcast('room:1', 'chat', { text: 'hi', at: [1, 2] });
  await client.direct('client-id', 'poke', null);
  const off: () => void = client.onDirect((m: DirectMessage) => {
    const data: JsonValue = m.data;
    console.log(m.event, data, m.from);
  });
  off();
  const id: string | undefined = client.clientId;
  const state: ConnectionState = client.state;
  console.log(subscribed, left, sent, id, state);
  client.close();

  new Client('ws://127.0.0.1:9772/ws');
  new Client('ws://127.0.0.1:9772/ws', { user: 'alice', secret: 's', reconnect: false, heartbeatMs: 0 });

  try {
    await client.subscribe('staff:1', () => {});
  } catch (e) {
    const error = e as HubbubError;
    const protocol: ProtocolErrorCode[] = ['ACCESS_DENIED', 'INVALID_CHANNEL', 'RATE_LIMITED'];
    const own: ClientErrorCode[] = ['DISCONNECTED', 'CLOSED'];
    console.log(protocol.includes(error.code as ProtocolErrorCode), own);
  }
}

// Misuse: each line below must be a type error (tsc fails on an unused @ts-expect-error).
export function misuse(client: Client): void {
  // @ts-expect-error a token is a string
  new Client('ws://127.0.0.1:9772/ws', { token: 42 });
  // @ts-expect-error no such option
  new Client('ws://127.0.0.1:9772/ws', { tokn: 'typo' });
  // @ts-expect-error reconnect takes delays or a boolean
  new Client('ws://127.0.0.1:9772/ws', { reconnect: 'yes' });
  // @ts-expect-error onStateChange receives a state, not a number
  new Client('ws://127.0.0.1:9772/ws', { onStateChange: (s: number) => s });
  // @ts-expect-error not a state
  const state: ConnectionState = 'open';
  // @ts-expect-error not an error code
  const code: ErrorCode = 'NOT_A_CODE';
  // @ts-expect-error a message has no such field
  client.subscribe('x', (m) => m.payload);
  // @ts-expect-error data must be narrowed before use as a string
  client.subscribe('x', (m) => m.data.toUpperCase());
  // @ts-expect-error subscribe needs a callback
  client.subscribe('x');
  // @ts-expect-error subscribe resolves to a Subscription
  const n: Promise<number> = client.subscribe('x', () => {});
  // @ts-expect-error the state is read-only
  client.state = 'connected';
  // @ts-expect-error the client id is read-only
  client.clientId = 'mine';
  // @ts-expect-error broadcast needs an event name
  client.broadcast('room:1', { text: 'hi' });
  console.log(state, code, n);
}
