// Type-checked (never run) against the package's declarations by `tsc -p tests`: the API
// as an application writes it, then misuses that the declarations must refuse.

import init, { Client, Subscription } from 'hubbub-client';
import type {
  ClientErrorCode,
  ClientOptions,
  ConnectionState,
  DirectMessage,
  ErrorCode,
  HistoryOptions,
  HistoryPage,
  HubbubError,
  JoinEvent,
  JsonObject,
  JsonValue,
  LeaveEvent,
  Message,
  Presence,
  PresentClient,
  ProtocolErrorCode,
  ReconnectOptions,
  Recovery,
  RpcError,
  StreamPosition,
  SubscribeOptions,
} from 'hubbub-client';

const reconnect: ReconnectOptions = { minDelayMs: 100, maxDelayMs: 5_000 };

const options: ClientOptions = {
  token: 'a.signed.jwt',
  getToken: async () => (await fetch('/token')).text(),
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
    const closeCode: number | undefined = error.closeCode;
    console.log(code, reason, channel, closeCode, error.message);
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

  // Streams: start after a rendered position, hear every recovery, who comes and goes.
  const rendered: StreamPosition = { epoch: 'e1', offset: 17 };
  const streamOptions: SubscribeOptions = {
    since: rendered,
    onRecover: (r: Recovery) => {
      const recovered: boolean = r.recovered;
      const at: StreamPosition = { epoch: r.epoch, offset: r.offset };
      if (!recovered) console.log('reload from', at);
    },
    onJoin: (j: JoinEvent) => {
      const user: string | null = j.user;
      const info: JsonObject | undefined = j.info;
      console.log(j.channel, j.client, user, info?.name);
    },
    onLeave: (l: LeaveEvent) => console.log(l.channel, l.client, l.user),
  };
  const stream = await client.subscribe('room:2', () => {}, streamOptions);
  await client.subscribe('room:3', () => {}, { since: 'latest' });
  const position: StreamPosition | undefined = stream.position;
  const query: HistoryOptions = { limit: 50, since: 3 };
  const page: HistoryPage = await stream.history(query);
  const pageAt: string = page.epoch + page.offset + page.channel;
  const old: Message[] = page.messages;
  await stream.history();
  const who: Presence = await stream.presence();
  const first: PresentClient | undefined = who.clients[0];
  const firstUser: string | null | undefined = first?.user;
  console.log(position, pageAt, old.map((m) => m.offset), who.channel, firstUser);

  const left: void = await sub.unsubscribe();
  const sent: void = await client.broadcast('room:1', 'chat', { text: 'hi', at: [1, 2] });
  await client.direct('client-id', 'poke', null);
  const off: () => void = client.onDirect((m: DirectMessage) => {
    const data: JsonValue = m.data;
    console.log(m.event, data, m.from);
  });
  off();
  // The app's own commands: the result typed by the caller, errors with the app's codes.
  interface Room {
    name: string;
    members: number;
  }
  const room: Room = await client.rpc<Room>('room.get', { id: 1 });
  const unknown: unknown = await client.rpc('ping');
  try {
    await client.rpc('room.join', 'room:1');
  } catch (e) {
    const error = e as RpcError;
    const appCode: string = error.code;
    const known: ErrorCode | string = error.code;
    console.log(appCode, known, error.reason, error.name, error.message);
  }
  console.log(room.name, room.members, unknown);

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
  // @ts-expect-error getToken gives a string
  new Client('ws://127.0.0.1:9772/ws', { getToken: async () => 42 });
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
  // @ts-expect-error since is a position or 'latest', not an offset alone
  client.subscribe('x', () => {}, { since: 17 });
  // @ts-expect-error a position's offset is a number
  client.subscribe('x', () => {}, { since: { epoch: 'e', offset: '17' } });
  // @ts-expect-error no such subscribe option
  client.subscribe('x', () => {}, { onRecovered: () => {} });
  // @ts-expect-error onRecover hears a Recovery, not a boolean
  client.subscribe('x', () => {}, { onRecover: (r: boolean) => r });
  // @ts-expect-error a join's user may be null
  client.subscribe('x', () => {}, { onJoin: (j) => j.user.toUpperCase() });
  // @ts-expect-error history's since is an offset
  client.subscribe('x', () => {}).then((s) => s.history({ since: { epoch: 'e', offset: 1 } }));
  // @ts-expect-error presence resolves to {channel, clients}, not an array
  client.subscribe('x', () => {}).then(async (s) => (await s.presence()).length);
  // @ts-expect-error the position is read-only
  client.subscribe('x', () => {}).then((s) => (s.position = { epoch: 'e', offset: 1 }));
  // @ts-expect-error rpc needs a method name
  client.rpc();
  // @ts-expect-error a method name is a string
  client.rpc(42, {});
  // @ts-expect-error rpc resolves to what the type argument says
  const s: Promise<string> = client.rpc<number>('count');
  console.log(state, code, n, s);
}
