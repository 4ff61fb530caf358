// Runs a Hocuspocus server with no extensions (no persistence, no auth):
//   node hocuspocus-server.mjs PORT
import { Server } from '@hocuspocus/server'

const port = Number(process.argv[2] || 1235)
const server = new Server({ port, address: '127.0.0.1', quiet: true })
server.listen().then(() => console.log(`hocuspocus listening on 127.0.0.1:${port}`))
