// ES module entry point of hubbub-node: the same objects as index.js.
import hubbub from './index.js'

export const {
  HubbubError,
  Unavailable,
  Publisher,
  token,
  verifyToken,
  verifyHook,
  signHook,
  createHookHandler,
  RpcError,
} = hubbub
export default hubbub
