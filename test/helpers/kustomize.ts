// deploy/k8s rendered with kubectl's kustomize, for the tests that read the manifests. MYAPP_K8S_DIR points them
// at another copy of the folder, e.g. an older commit's (git archive <rev> deploy | tar -x -C /tmp/old), to see
// which checks that version fails.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { parseAllDocuments } from 'yaml'
import { programMissing } from './tools.ts'

const run = promisify(execFile)
export const KUBECTL = '/usr/bin/kubectl'
export const K8S_DIR = process.env.MYAPP_K8S_DIR ?? new URL('../../deploy/k8s/', import.meta.url).pathname
export const OVERLAYS = ['dev', 'stage', 'prod'] as const
export type Overlay = (typeof OVERLAYS)[number]

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are read field by field
export type Manifest = Record<string, any>

export const kubectlMissing = () => programMissing(KUBECTL, 'install kubectl with kustomize v5')

/** `kubectl kustomize` of a folder under deploy/k8s (overlays/dev, argocd, …), one object per document. */
export async function render(path: string): Promise<Manifest[]> {
  const folder = `${K8S_DIR.replace(/\/?$/, '/')}${path}`
  const { stdout } = await run(KUBECTL, ['kustomize', folder], { maxBuffer: 16 * 1024 * 1024 })
  return parseAllDocuments(stdout).map((document) => document.toJSON() as Manifest)
}
