// Runs before the npm scripts that start Node.js on the TypeScript sources (package.json's pre-scripts). It is
// plain JavaScript so that any old node can parse it: on Node.js before 24, the sources fail to load with an
// error that does not say why.
import { arch, argv, platform, version } from 'node:process'
import { pathToFileURL } from 'node:url'

const REQUIRED_MAJOR = 24
// The platforms package.json's optionalDependencies carry a Node.js binary for.
const PROVIDED = ['linux-x64', 'linux-arm64']

/**
 * undefined when `nodeVersion` can run the project; otherwise the one line that says what to do.
 * @param {string} nodeVersion as in process.version
 * @param {string} where platform-arch, e.g. linux-x64
 * @returns {string | undefined}
 */
export function nodeVersionProblem(nodeVersion, where) {
  const major = Number(nodeVersion.replace(/^v/, '').split('.')[0])
  if (major >= REQUIRED_MAJOR) return undefined
  const remedy = PROVIDED.includes(where)
    ? 'Run "npm ci" without --omit=optional: it installs Node.js 24 for the npm scripts.'
    : `The npm registry has no Node.js 24 package for ${where}: install Node.js 24 (https://nodejs.org, or "nvm install 24"), then run "npm ci" again.`
  return `myapp needs Node.js ${REQUIRED_MAJOR} or newer; this is Node.js ${nodeVersion}. ${remedy}`
}

if (argv[1] !== undefined && import.meta.url === pathToFileURL(argv[1]).href) {
  const problem = nodeVersionProblem(version, `${platform}-${arch}`)
  if (problem !== undefined) {
    process.stderr.write(`${problem}\n`)
    process.exitCode = 1
  }
}
