// Type-checked by module.test.mjs (never run): the package's API as a TypeScript program
// written in CommonJS style sees it.
import {
  HubbubError,
  Publisher,
  token,
  verifyToken,
  type HistoryMessage,
  type HistoryOptions,
  type HistoryPage,
  type Info,
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
