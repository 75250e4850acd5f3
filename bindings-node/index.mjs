// ES module entry point of hubbub-node: the same objects as index.js.
import hubbub from './index.js'

export const { HubbubError, Publisher, token, verifyToken } = hubbub
export default hubbub
