/**
 * The deployment recipes in deploy/ (issue 14), checked as far as this machine allows: the
 * systemd unit by `systemd-analyze verify` (Debian's systemd), the Dockerfile parsed and linted
 * (no base image can be pulled here, so it is not built: README says so), the Kubernetes
 * manifests validated against the API's schemas (kubernetes-models) and against each other.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DockerfileParser } from 'dockerfile-ast';
import { Deployment } from 'kubernetes-models/apps/v1';
import { ConfigMap, Secret, Service } from 'kubernetes-models/v1';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { validateManifestText } from '../../src/manifests/load.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const read = (file: string): string => readFileSync(path.join(ROOT, file), 'utf8');
const hasSystemdAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;

describe('deploy/systemd/appvisor.service', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'appvisor-unit-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it.skipIf(!hasSystemdAnalyze)('passes systemd-analyze verify with nothing to say', () => {
    const unit = path.join(tmp, 'appvisor.service');
    copyFileSync(path.join(ROOT, 'deploy/systemd/appvisor.service'), unit);
    const verify = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
    // An unknown key is only a warning (exit 0): any output at all fails the recipe.
    expect({ status: verify.status, output: `${verify.stdout}${verify.stderr}`.trim() }).toEqual({
      status: 0,
      output: '',
    });
  });

  it('runs serve from the installed CLI, stops with SIGTERM and takes its children with it', () => {
    const unit = read('deploy/systemd/appvisor.service');
    expect(unit).toMatch(/^ExecStart=\/usr\/bin\/node \/opt\/appvisor\/bin\/appvisor\.js serve$/m);
    expect(unit).toMatch(/^KillSignal=SIGTERM$/m);
    expect(unit).toMatch(/^KillMode=mixed$/m);
    expect(unit).toMatch(/^User=appvisor$/m);
  });
});

describe('deploy/docker/Dockerfile', () => {
  const text = read('deploy/docker/Dockerfile');
  const dockerfile = DockerfileParser.parse(text);
  const instructions = dockerfile.getInstructions();
  const KNOWN = new Set([
    'FROM',
    'RUN',
    'CMD',
    'LABEL',
    'EXPOSE',
    'ENV',
    'ADD',
    'COPY',
    'ENTRYPOINT',
    'VOLUME',
    'USER',
    'WORKDIR',
    'ARG',
    'ONBUILD',
    'STOPSIGNAL',
    'HEALTHCHECK',
    'SHELL',
  ]);

  it('parses into known instructions only, with pinned base images and no ADD', () => {
    expect(instructions.map((i) => i.getKeyword()).filter((k) => !KNOWN.has(k))).toEqual([]);
    expect(instructions.some((i) => i.getKeyword() === 'ADD')).toBe(false);
    for (const from of dockerfile.getFROMs()) {
      expect(from.getImageTag(), from.getImageName() ?? '').toMatch(/^\d+[\w.-]*$/);
    }
  });

  it('copies only what exists in the repository, or what the build stage made', () => {
    for (const copy of dockerfile.getCOPYs()) {
      const args = copy.getArguments().map((a) => a.getValue());
      const sources = args.slice(0, -1);
      if (copy.getFromFlag()) {
        expect(copy.getFromFlag()!.getValue()).toBe('build');
        continue;
      }
      for (const source of sources) expect(existsSync(path.join(ROOT, source)), source).toBe(true);
    }
  });

  it('runs as a non-root user with a health check on healthz, serve as its command, tini as PID 1', () => {
    const last = (keyword: string) => instructions.filter((i) => i.getKeyword() === keyword).at(-1);
    expect(last('USER')?.getArgumentsContent()).toBe('node');
    expect(last('HEALTHCHECK')?.getArgumentsContent()).toContain('/_supervisor/healthz');
    expect(last('EXPOSE')?.getArgumentsContent()).toBe('13000');
    expect(JSON.parse(last('ENTRYPOINT')!.getArgumentsContent()!)).toEqual([
      '/usr/bin/tini',
      '--',
      'node',
      '/opt/appvisor/bin/appvisor.js',
    ]);
    expect(JSON.parse(last('CMD')!.getArgumentsContent()!)).toEqual(['serve']);
    // The gateway must listen beyond the container's loopback.
    expect(text).toMatch(/APPVISOR_HOST=0\.0\.0\.0/);
  });
});

describe('deploy/kubernetes/appvisor.yaml', () => {
  const docs = parseAllDocuments(read('deploy/kubernetes/appvisor.yaml')).map((d) => {
    expect(d.errors).toEqual([]);
    return d.toJSON() as { kind: string; metadata: { name: string } } & Record<string, unknown>;
  });
  // biome-ignore lint/suspicious/noExplicitAny: the manifests' shapes are checked by kubernetes-models above.
  type Loose = any;
  const byKind = (kind: string): Loose => docs.find((d) => d.kind === kind);

  it('is a Secret, a ConfigMap, a Deployment and a Service, each valid for its API', () => {
    expect(docs.map((d) => d.kind)).toEqual(['Secret', 'ConfigMap', 'Deployment', 'Service']);
    new Secret(byKind('Secret')).validate();
    new ConfigMap(byKind('ConfigMap')).validate();
    new Deployment(byKind('Deployment')).validate();
    new Service(byKind('Service')).validate();
  });

  it('fits together: probes on healthz and readyz, the Secret, the ConfigMap and the Service selector', () => {
    const deployment = byKind('Deployment');
    const pod = deployment.spec.template;
    const container = pod.spec.containers[0];
    expect(deployment.spec.replicas).toBeGreaterThan(1);
    expect(container.readinessProbe.httpGet.path).toBe('/_supervisor/readyz');
    expect(container.livenessProbe.httpGet.path).toBe('/_supervisor/healthz');
    expect(container.ports[0].containerPort).toBe(13000);
    expect(container.envFrom[0].secretRef.name).toBe(byKind('Secret').metadata.name);
    expect(Object.keys(byKind('Secret').stringData)).toEqual([
      'APPVISOR_MASTER_KEY',
      'APPVISOR_DATABASE_URL',
    ]);
    expect(pod.spec.volumes.find((v: Loose) => v.name === 'apps').configMap.name).toBe(
      byKind('ConfigMap').metadata.name,
    );
    expect(byKind('Service').spec.selector).toEqual(pod.metadata.labels);
    expect(deployment.spec.selector.matchLabels).toEqual(pod.metadata.labels);
    // The drain must end before the pod's grace does.
    const drain = container.env.find((e: Loose) => e.name === 'APPVISOR_SHUTDOWN_DRAIN').value as string;
    expect(Number.parseInt(drain, 10)).toBeLessThan(pod.spec.terminationGracePeriodSeconds);
  });

  it('ships manifests appvisor accepts', () => {
    const data = byKind('ConfigMap').data as Record<string, string>;
    for (const [file, text] of Object.entries(data)) {
      const result = validateManifestText(text, file, {});
      expect(result.ok ? [] : result.invalid.errors, file).toEqual([]);
    }
  });
});
