// Records which sources the committed bundle was built from: dist/build-info.json holds a
// SHA-256 over the inputs (path and bytes of each, in sorted order). tests/web/ recomputes it
// with Python, so a stale bundle fails the test suite without needing Node or node_modules.
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

const web = fileURLToPath(new URL('..', import.meta.url))
const INPUTS = ['index.html', 'package.json', 'package-lock.json', 'tsconfig.json', 'vite.config.ts', 'src']

function files(path) {
  if (statSync(path).isFile()) return [path]
  return readdirSync(path).flatMap((name) => files(join(path, name)))
}

const paths = INPUTS.flatMap((input) => files(join(web, input)))
  .map((path) => relative(web, path).split(sep).join('/'))
  .sort()
const hash = createHash('sha256')
for (const path of paths) {
  hash.update(path + '\0')
  hash.update(readFileSync(join(web, path)))
  hash.update('\0')
}
const info = {
  source_sha256: hash.digest('hex'),
  inputs: paths,
  rebuild: 'make web (or: cd web && npm ci && npm run build)',
}
writeFileSync(join(web, 'dist', 'build-info.json'), JSON.stringify(info, null, 2) + '\n')
console.log(`stamped dist/build-info.json ${info.source_sha256.slice(0, 12)} from ${paths.length} files`)
