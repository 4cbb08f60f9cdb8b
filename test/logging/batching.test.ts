// The default log destination: the lines of one event-loop turn reach stdout as one write (a write
// per line cost about 2 µs of CPU a request, issue 19), nothing logged is lost when the process
// exits, and a quiet server's lines still arrive without more traffic.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { TurnBatcher } from '../../src/logger.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const LOGGER = path.join(ROOT, 'dist/src/logger.js');

/** Runs `script` (an ES module importing createLogger from dist) and gives its stdout lines as they come. */
function run(script: string, onLine?: (line: string, kill: () => void) => void): Promise<{ lines: string[]; code: number | null }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', `import { createLogger } from ${JSON.stringify(LOGGER)};\n${script}`], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  let rest = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    rest += chunk;
    const parts = rest.split('\n');
    rest = parts.pop() ?? '';
    for (const line of parts) {
      lines.push(line);
      onLine?.(line, () => child.kill('SIGKILL'));
    }
  });
  return new Promise((resolve) => child.on('close', (code) => resolve({ lines, code })));
}

describe('the default log destination', () => {
  it('hands the lines logged in one turn to the file as one write', async () => {
    const writes: string[] = [];
    const batcher = new TurnBatcher({ write: (s) => writes.push(s) });
    batcher.write('{"a":1}\n');
    batcher.write('{"a":2}\n');
    batcher.write('{"a":3}\n');
    expect(writes).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(writes).toEqual(['{"a":1}\n{"a":2}\n{"a":3}\n']);
    batcher.write('{"a":4}\n');
    await new Promise((r) => setImmediate(r));
    expect(writes).toEqual(['{"a":1}\n{"a":2}\n{"a":3}\n', '{"a":4}\n']);
  });

  it('writes every line logged right before process.exit, in order', async () => {
    const { lines, code } = await run(`const log = createLogger('info');
      for (let i = 0; i < 500; i++) log.info({ i }, 'line');
      process.exit(3);`);
    expect(code).toBe(3);
    expect(lines.map((l) => (JSON.parse(l) as { i: number }).i)).toEqual(Array.from({ length: 500 }, (_, i) => i));
  });

  it('writes every line when the process ends by itself', async () => {
    const { lines, code } = await run(`const log = createLogger('info');
      log.info({ i: 0 }, 'line');
      setTimeout(() => log.info({ i: 1 }, 'line'), 10);`);
    expect(code).toBe(0);
    expect(lines.map((l) => (JSON.parse(l) as { i: number }).i)).toEqual([0, 1]);
  });

  it('delivers a quiet process’s line without waiting for more to fill the batch', async () => {
    // the process stays up (a timer) and logs one short line: it must arrive on its own (the
    // periodic flush); the test ends the process once the line is seen
    const { lines } = await run(`const log = createLogger('info');
      log.info({ quiet: true }, 'alone');
      setInterval(() => {}, 1000);`, (_line, kill) => kill());
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] as string)).toMatchObject({ quiet: true, msg: 'alone' });
  });
});
