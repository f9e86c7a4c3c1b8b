// Debian's nginx in front of test services: a generated configuration in a temp folder, on free loopback ports.
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { programMissing } from './tools.ts'

export const NGINX = '/usr/sbin/nginx'

/** false when nginx is installed; otherwise why the tests that need it are skipped. */
export const nginxMissing = (): string | false => programMissing(NGINX, 'apt-get install nginx-light')

export interface RunningNginx {
  /** Stops nginx gracefully and waits for it to exit. */
  stop(): Promise<void>
}

/**
 * Starts nginx with `http` as the body of its `http {}` block (upstreams and servers) and waits until `readyUrl`
 * answers 2xx. Everything it writes stays in its temp folder, which its workers may write to whoever they run as.
 */
export async function startNginx(http: string, readyUrl: string): Promise<RunningNginx> {
  const folder = mkdtempSync(join(tmpdir(), 'myapp-nginx-'))
  chmodSync(folder, 0o777)
  const errorLog = join(folder, 'error.log')
  writeFileSync(
    join(folder, 'nginx.conf'),
    `daemon off;
pid ${folder}/nginx.pid;
error_log ${errorLog};
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${folder}/body; proxy_temp_path ${folder}/proxy;
  fastcgi_temp_path ${folder}/fastcgi; uwsgi_temp_path ${folder}/uwsgi; scgi_temp_path ${folder}/scgi;
${http}
}
`,
  )
  // -e: the error log before the configuration is read, which would otherwise be /var/log/nginx's.
  const child: ChildProcess = spawn(NGINX, ['-c', join(folder, 'nginx.conf'), '-p', folder, '-e', errorLog], {
    stdio: 'inherit',
  })
  const exited = once(child, 'exit')
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGQUIT')
    await Promise.race([exited, sleep(5000)])
    child.kill('SIGKILL')
  }
  for (let attempt = 0; attempt < 50; attempt++) {
    if (child.exitCode !== null) break
    const ready = await fetch(readyUrl).then(
      (response) => response.ok,
      () => false,
    )
    if (ready) return { stop }
    await sleep(100)
  }
  await stop()
  const log = existsSync(errorLog) ? readFileSync(errorLog, 'utf8') : '(no error log)'
  throw new Error(`nginx did not answer at ${readyUrl}:\n${log}`)
}
