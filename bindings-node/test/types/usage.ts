// Type-checked by module.test.mjs (never run): the package's API as a TypeScript program
// written in CommonJS style sees it.
import {
  HubbubError,
  Publisher,
  RpcError,
  createHookHandler,
  signHook,
  token,
  verifyHook,
  verifyToken,
  type ConnectRequest,
  type EventNotice,
  type HookHandler,
  type Identity,
  type RpcRequest,
  type SubscribeRequest,
  type HistoryMessage,
  type HistoryOptions,
  type HistoryPage,
  type Info,
  type Namespace,
  type NodeInfo,
  type Presence,
  type PresenceStats,
  type PresentClient,
  type Published,
  type PublisherOptions,
  type TokenClaims,
} from 'hubbub-node'

export async function uses(): Promise<void> {
  const options: PublisherOptions = { url: 'http://127.0.0.1:9772', apiKey: 'key', timeout: 1000 }
  const p = new Publisher(options)
  const url: string = p.url
  const published: Published = await p.publish('room:1', { text: 'hi' }, { event: 'chat' })
  const offset: number | undefined = published.offset
  const epoch: string | undefined = published.epoch
  const channels: string[] = (await p.broadcast(['a', 'b'], [1, 2])).published
  const delivered: number = (await p.direct(null, { user: '42', event: 'dm' })).delivered
  const closed: number = (await p.disconnect({ client: 'id' })).disconnected
  const subscribers: number | undefined = (await p.channels()).channels['room:1']?.subscribers
  const info: Info = await p.info()
  const uptime: number = info.uptime_s
  const nodes: NodeInfo[] = info.nodes
  const historyOptions: HistoryOptions = { limit: 50, since: offset ?? 0 }
  const page: HistoryPage = await p.history('room:1', historyOptions)
  const position: { epoch: string; offset: number } = { epoch: page.epoch, offset: page.offset }
  const messages: HistoryMessage[] = (await p.history('room:1')).messages
  const data: unknown = messages[0]?.data
  const from: string | undefined = messages[0]?.from
  const at: number | undefined = messages[0]?.offset
  const presence: Presence = await p.presence('room:1')
  const present: PresentClient | undefined = presence.clients[0]
  const user: string | null | undefined = present?.user
  const name: unknown = present?.info?.name
  const stats: PresenceStats = await p.presenceStats('room:1')
  const users: number = stats.users
  const namespaces: Namespace[] = [{ pattern: 'room:*', history_size: 100, history_ttl: '10m' }]
  const throughRedis = new Publisher({ url: 'redis://127.0.0.1:6379/0', namespaces, redisPrefix: 'hubbub' })
  await throughRedis.publish('room:1', { text: 'hi' })
  // @ts-expect-error: history_size is a number
  new Publisher({ url: 'redis://127.0.0.1:6379/0', namespaces: [{ pattern: 'a', history_size: '10' }] })
  const t: string = token('secret', { user: '42', read: ['room:*'], info: { name: 'ann' }, expiresIn: 60 })
  const claims: TokenClaims = verifyToken('secret', t)
  const sub: string = claims.sub
  const lenient: number | undefined = verifyToken('secret', t, { requireExp: false }).exp
  try {
    await p.info()
  } catch (err) {
    if (err instanceof HubbubError) {
      const code: string = err.code
      const reason: string | undefined = err.reason
      void [code, reason]
    }
  }
  // @ts-expect-error: a channel is a string
  await p.publish(1, {})
  // @ts-expect-error: a token needs a user
  token('secret', {})
  // @ts-expect-error: limit is a number
  await p.history('room:1', { limit: '10' })
  // @ts-expect-error: presenceStats, not presence_stats
  await p.presence_stats('room:1')
  void [url, offset, epoch, channels, delivered, closed, subscribers, uptime, sub, lenient]
  void [nodes, position, data, from, at, user, name, users]
}

// The hook receiver as an app writes it (docs/node.md), and misuses the types refuse.
export function hooks(): HookHandler {
  interface Rename {
    room: number
    name: string
  }
  const handler: HookHandler = createHookHandler({
    secret: 'secret',
    connect({ headers, client, ip }: ConnectRequest): Identity | null | false {
      if (headers.cookie === undefined) return null
      if (ip === '203.0.113.9') return false
      return { user: 42, read: ['room:*'], info: { name: 'Ann', client }, expiresIn: 3600 }
    },
    subscribe: {
      'room:*': async ({ user, channel, clients_count }: SubscribeRequest) => {
        if (user === null) return { allow: false, reason: 'members only' }
        if (clients_count > 100) return false
        return [{ event: 'welcome', data: { channel } }, { data: [1, 2] }]
      },
      'open:*': () => true,
      'quiet:*': () => ({ allow: true }),
    },
    rpc: {
      async rename({ room, name }: Rename, { user, method }: RpcRequest) {
        if (user === null) throw new RpcError('NOT_ALLOWED', `${method}: log in first`)
        return { room, name }
      },
      nothing: () => {},
    },
    events(notice: EventNotice) {
      const kind: 'unsubscribe' | 'logout' | 'disconnect' = notice.event
      const channel: string | undefined = notice.channel
      void [kind, channel]
    },
    onError: (error: unknown, hook: 'connect' | 'subscribe' | 'rpc' | 'events') => console.error(hook, error),
    limit: 65536,
  })
  createHookHandler({ secret: 's', subscribe: ({ channel }) => channel.startsWith('public:') })
  const signature: string = signHook('secret', 1700000000, '{}')
  verifyHook('secret', '1700000000', signature, new TextEncoder().encode('{}'))
  verifyHook('secret', undefined, undefined, '{}', 1700000000)
  const code: string = new RpcError('CODE').code
  // @ts-expect-error the secret is required
  createHookHandler({ rpc: {} })
  // @ts-expect-error a subscribe verdict is not a string
  createHookHandler({ secret: 's', subscribe: () => 'yes' })
  // @ts-expect-error an rpc method is a function
  createHookHandler({ secret: 's', rpc: { echo: 'echo' } })
  // @ts-expect-error connect answers an identity, null or false, not true
  createHookHandler({ secret: 's', connect: () => true })
  // @ts-expect-error signHook's timestamp is a number of seconds
  signHook('secret', '1700000000', '{}')
  void code
  return handler
}
