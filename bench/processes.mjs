// Child processes of the driver: free ports, starting and stopping a process, reading its startup
// line, waiting until it is ready, and the registry that stops them all at the end (or on Ctrl-C).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * A child process we started: its pid, the tail of its stderr, whether it exited, and stop()
 * (SIGTERM to this pid only, SIGKILL after a deadline).
 */
export function startProcess(command, args, { env, cwd, stdoutFile } = {}) {
  const out = stdoutFile ? fs.openSync(stdoutFile, 'a') : 'pipe';
  const child = spawn(command, args, { env, cwd, stdio: ['ignore', out, 'pipe'] });
  if (typeof out === 'number') fs.closeSync(out);
  const proc = { child, pid: child.pid, stderr: '', exited: false, code: null };
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s) => {
    proc.stderr = (proc.stderr + s).slice(-8000);
  });
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      proc.exited = true;
      proc.code = code ?? signal;
      resolve();
    });
  });
  proc.stop = async (deadlineMs = 15000) => {
    if (proc.exited) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (!proc.exited) child.kill('SIGKILL');
    }, deadlineMs);
    await exited;
    clearTimeout(timer);
  };
  proc.exitedPromise = exited;
  return proc;
}

/** The first line of a child's stdout parsed as JSON (the port our helper servers print). */
export function firstJsonLine(proc, timeoutMs = 20000) {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`no startup line within ${timeoutMs} ms; stderr: ${proc.stderr.slice(-500)}`)), timeoutMs);
    proc.child.stdout.setEncoding('utf8');
    const onData = (s) => {
      buf += s;
      for (const line of buf.split('\n').slice(0, -1)) {
        try {
          const parsed = JSON.parse(line);
          clearTimeout(timer);
          proc.child.stdout.off('data', onData);
          proc.child.stdout.resume(); // keep draining whatever follows
          resolve(parsed);
          return;
        } catch {
          // not our line: a library's notice
        }
      }
    };
    proc.child.stdout.on('data', onData);
    proc.child.once('exit', () => reject(new Error(`exited before starting: ${proc.stderr.slice(-800)}`)));
  });
}

/** Polls `url` until it answers 200 (readiness), or fails when the process dies first. */
export async function waitReady(proc, url, timeoutMs = 30000) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (proc.exited) throw new Error(`the server exited (${proc.code}) before it was ready:\n${proc.stderr.slice(-1500)}`);
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (r.status === 200) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error(`${url} was not ready within ${timeoutMs} ms:\n${proc.stderr.slice(-1500)}`);
}

const started = new Set();

/** Registers a started process, so that stopAll() stops it if it is still running. */
export function track(proc) {
  started.add(proc);
  proc.exitedPromise.then(() => started.delete(proc));
  return proc;
}

export async function stopAll() {
  await Promise.all([...started].map((p) => p.stop(5000)));
}
