// Type-checked by module.test.mjs (never run): the package as an ES module sees it.
import { HubbubError, Publisher, token } from 'hubbub-node'

export async function uses(): Promise<string> {
  const p = new Publisher()
  await p.publish('hello', { hello: 'world' })
  const err: HubbubError = new HubbubError('UNAVAILABLE')
  return token('secret', { user: err.code })
}
