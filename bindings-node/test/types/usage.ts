// Type-checked by module.test.mjs (never run): the package's API as a TypeScript program
// written in CommonJS style sees it.
import {
  HubbubError,
  Publisher,
  token,
  verifyToken,
  type Info,
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
  const channels: string[] = (await p.broadcast(['a', 'b'], [1, 2])).published
  const delivered: number = (await p.direct(null, { user: '42', event: 'dm' })).delivered
  const closed: number = (await p.disconnect({ client: 'id' })).disconnected
  const subscribers: number | undefined = (await p.channels()).channels['room:1']?.subscribers
  const info: Info = await p.info()
  const uptime: number = info.uptime_s
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
  void [url, offset, channels, delivered, closed, subscribers, uptime, sub, lenient]
}
