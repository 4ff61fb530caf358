// Shared command-line pieces of the anchor scripts.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const scriptDir = path.dirname(fileURLToPath(import.meta.url));

// defaultTraceDir is where the editing traces live beside the repository.
export const defaultTraceDir = path.resolve(scriptDir, '../../../shared/traces');

// defaultTraceFiles lists every trace in defaultTraceDir, sorted: what the
// trace scripts replay when no file is named.
export function defaultTraceFiles() {
  return readdirSync(defaultTraceDir)
    .filter((f) => f.endsWith('.json.gz'))
    .sort()
    .map((f) => path.join(defaultTraceDir, f));
}

// median of numbers; the mean of the middle two for an even count.
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// parseOptions reads `--name value` and `--name=value` flags, each named in
// defaults (numbers parsed as numbers); an unknown one exits with status 2.
export function parseOptions(argv, defaults) {
  const out = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const m = argv[i].match(/^--([^=]+)(?:=(.*))?$/);
    if (!m || !(m[1] in defaults)) {
      console.error(`unknown argument ${argv[i]}`);
      process.exit(2);
    }
    const v = m[2] !== undefined ? m[2] : argv[++i];
    out[m[1]] = typeof defaults[m[1]] === 'number' ? Number(v) : v;
  }
  return out;
}
