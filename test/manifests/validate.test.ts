import { describe, expect, it } from 'vitest';
import { validateManifestText } from '../../src/manifests/load.js';
import { manifest } from './helpers.js';

/** Errors of one text as "line:col message". */
function errorsOf(text: string): string[] {
  const result = validateManifestText(text, 'x.yaml', {});
  return result.ok ? [] : result.invalid.errors.map((e) => `${e.line}:${e.column} ${e.message}`);
}

describe('schema errors, in words and at the right place', () => {
  const cases: [string, string, string[]][] = [
    [
      'missing apiVersion and kind (at the mapping)',
      'name: x\n',
      [
        "1:1 missing required field 'apiVersion' (add `apiVersion: appvisor/v1`)",
        "1:1 missing required field 'kind' (add `kind: App`)",
      ],
    ],
    [
      'missing name',
      'apiVersion: appvisor/v1\nkind: App\n',
      ["1:1 missing required field 'name' (the app's ID, e.g. `name: crm`)"],
    ],
    [
      'wrong apiVersion',
      'apiVersion: appvisor/v2\nkind: App\nname: x\n',
      ["1:13 apiVersion must be 'appvisor/v1', got 'appvisor/v2'"],
    ],
    [
      'unknown top-level field with a suggestion',
      manifest('x', 'startmode: with-main'),
      ["4:1 unknown field 'startmode'; did you mean 'startMode'?"],
    ],
    [
      'unknown nested field with a suggestion',
      manifest('x', 'database:', '  adpot: true'),
      ["5:3 unknown field 'adpot' in database; did you mean 'adopt'?"],
    ],
    [
      'unknown nested field listing the allowed ones',
      manifest('x', 'jwt:', '  algorithm: HS256'),
      ["5:3 unknown field 'algorithm' in jwt; allowed: secret"],
    ],
    [
      'yes is not a boolean in YAML 1.2',
      manifest('x', 'upgrade: yes'),
      ["4:10 upgrade must be true or false, got 'yes' (YAML 1.2 reads it as text)"],
    ],
    [
      'a mapping where a list belongs',
      manifest('x', 'domains: { a: b }'),
      ['4:10 domains must be a list, got a mapping'],
    ],
    [
      'a list where a mapping belongs',
      manifest('x', 'config: [1, 2]'),
      ['4:9 config must be a mapping (key: value pairs), got a list'],
    ],
    [
      'an empty value',
      manifest('x', 'database:'),
      ['4:10 database must be a mapping (key: value pairs), got an empty value'],
    ],
    ['a number as displayName', manifest('x', 'displayName: 42'), ['4:14 displayName must be text, got 42']],
    [
      'an enum typo',
      manifest('x', 'database:', '  mode: new-databse'),
      [
        "5:9 database.mode 'new-databse' is not one of: new-database, new-connection, new-schema; did you mean 'new-database'?",
      ],
    ],
    [
      'a database mode without its new-',
      manifest('x', 'database:', '  mode: schema'),
      [
        "5:9 database.mode 'schema' is not one of: new-database, new-connection, new-schema; did you mean 'new-schema'?",
      ],
    ],
    [
      'a mode typo next to the field that mode needs: one error, the typo',
      manifest('x', 'database:', '  mode: new-conection', '  connection: { url: "postgres://u@db:5432" }'),
      [
        "5:9 database.mode 'new-conection' is not one of: new-database, new-connection, new-schema; did you mean 'new-connection'?",
      ],
    ],
    [
      'a schema with a valid mode other than new-schema',
      manifest('x', 'database:', '  mode: new-database', '  schema: s'),
      ['6:3 database.schema is only allowed with mode: new-schema'],
    ],
    [
      'an enum given a number',
      manifest('x', 'deletionPolicy: 1'),
      ['4:17 deletionPolicy must be text, got 1'],
    ],
    [
      'an upper-case name',
      'apiVersion: appvisor/v1\nkind: App\nname: CRM\n',
      [
        "3:7 name 'CRM' is not valid: use 1-40 lower-case letters, digits, '-' or '_', starting with a letter",
      ],
    ],
    [
      'a name over 40 characters',
      manifest('a'.repeat(41)),
      [expect.stringMatching(/^3:7 name 'a{41}' is not valid: use 1-40/)] as never,
    ],
    [
      'the reserved name main',
      manifest('main'),
      ["3:7 the name 'main' is reserved for the main app; choose another name"],
    ],
    [
      'a database name with a quote',
      manifest('x', 'database:', '  name: "a\\"b"'),
      [
        `5:9 database.name 'a"b' is not valid: use at most 63 letters, digits, '_' or '-', starting with a letter or '_' (no quotes, dots or spaces)`,
      ],
    ],
    [
      'a schema name with a dot',
      manifest('x', 'database:', '  mode: new-schema', '  schema: a.b'),
      [expect.stringMatching(/^6:11 database.schema 'a.b' is not valid: use at most 63 letters/)] as never,
    ],
    [
      'a domain with a scheme',
      manifest('x', 'domains:', '  - https://crm.example.com'),
      [
        "5:5 domains[0] 'https://crm.example.com' is not valid: write an exact host name such as crm.example.com (no scheme, port or path)",
      ],
    ],
    [
      'a domain listed twice',
      manifest('x', 'domains: [a.example.com, b.example.com, a.example.com]'),
      ["4:41 domains lists 'a.example.com' twice"],
    ],
    [
      'schema without new-schema (at the key)',
      manifest('x', 'database:', '  schema: s'),
      ['5:3 database.schema is only allowed with mode: new-schema'],
    ],
    [
      'connection without new-connection (at the key)',
      manifest('x', 'database:', '  mode: new-schema', '  connection: { url: "postgres://h" }'),
      ['6:3 database.connection is only allowed with mode: new-connection'],
    ],
    [
      'new-connection without connection',
      manifest('x', 'database:', '  mode: new-connection'),
      [
        "5:3 missing required field 'database.connection' with mode: new-connection (add `connection: { url: … }`)",
      ],
    ],
    [
      'a connection URL of another kind (never echoed)',
      manifest('x', 'database:', '  mode: new-connection', '  connection:', '    url: "redis://u:pw@h"'),
      [
        '7:10 database.connection.url is not valid: use a postgres://user:password@host:port or mysql://user:password@host:port URL',
      ],
    ],
    [
      'a connection given as a string (never echoed)',
      manifest('x', 'database:', '  mode: new-connection', '  connection: "postgres://u:pw@h"'),
      ['6:15 database.connection must be a mapping (key: value pairs), got text'],
    ],
    [
      'environment other than local',
      manifest('x', 'environment: cloud'),
      ["4:14 environment 'cloud' is not one of: local"],
    ],
    [
      'several problems at once, in order',
      manifest('x', 'enabled: 1', 'jwt: { secret: mine }', 'colour: red'),
      [
        '4:10 enabled must be true or false, got 1',
        "5:16 jwt.secret 'mine' is not one of: own, shared",
        "6:1 unknown field 'colour'; allowed: apiVersion, kind, name, displayName, enabled, startMode, environment, database, upgrade, jwt, domains, config, deletionPolicy, dropAfter, idleStop, application, isolation",
      ],
    ],
    [
      'isolation limits on a shared app',
      manifest('x', 'isolation:', '  memoryLimitMb: 100'),
      [
        "5:3 isolation.memoryLimitMb and isolation.watchdogMs apply only to an isolated app: add mode: worker or mode: process (a shared app runs in the supervisor's process and cannot be limited)",
      ],
    ],
    [
      'an isolation mode that does not exist, a watchdog too short',
      manifest('x', 'isolation:', '  mode: thread', '  watchdogMs: 5'),
      [
        "5:9 isolation.mode 'thread' is not one of: shared, worker, process",
        '6:15 isolation.watchdogMs must be >= 100',
      ],
    ],
    [
      'an application name that cannot be one',
      manifest('x', 'application: ./crm.js'),
      [
        "4:14 application './crm.js' is not valid: write the name of an application listed under applications in appvisor.yaml, e.g. crm (lower-case letters, digits, - and _)",
      ],
    ],
    [
      'dropAfter without deletionPolicy: drop',
      manifest('x', 'dropAfter: 1h'),
      ['4:1 dropAfter is only allowed with deletionPolicy: drop (with retain the data is never dropped)'],
    ],
    [
      'dropAfter that is not a duration',
      manifest('x', 'deletionPolicy: drop', 'dropAfter: tomorrow'),
      [
        "5:12 dropAfter 'tomorrow' is not valid: write a duration such as 30s, 15m, 24h, 7d or 1h30m (0s drops at once)",
      ],
    ],
    [
      'idleStop that is not a duration',
      manifest('x', 'idleStop: soon'),
      [
        "4:11 idleStop 'soon' is not valid: write a duration such as 30s, 15m or 1h, or off (off or 0: never stopped for idleness)",
      ],
    ],
    [
      'idleStop as a number other than 0',
      manifest('x', 'idleStop: 15'),
      [
        '4:11 idleStop 15 is not valid: write a duration such as 30s, 15m or 1h, or off (off or 0: never stopped for idleness)',
      ],
    ],
    [
      'idleStop as a list',
      manifest('x', 'idleStop: [15m]'),
      ['4:11 idleStop must be a duration such as 15m, or off, got a list'],
    ],
  ];

  it.each(cases)('%s', (_title, text, expected) => {
    expect(errorsOf(text)).toEqual(expected);
  });

  it.each(['idleStop: 15m', 'idleStop: off', 'idleStop: 0', 'idleStop: 1h30m'])('accepts %s', (line) => {
    expect(errorsOf(manifest('x', line))).toEqual([]);
  });

  it('accepts the full example of SPEC §3', () => {
    const text = [
      '# yaml-language-server: $schema=../schema/app.schema.json',
      'apiVersion: appvisor/v1',
      'kind: App',
      'name: crm',
      'displayName: CRM',
      'enabled: true',
      'startMode: on-first-visit',
      'environment: local',
      'database:',
      '  mode: new-database',
      '  name: crm',
      '  adopt: false',
      'upgrade: true',
      'jwt:',
      '  secret: own',
      'domains: [crm.example.com]',
      'config: {}',
      'deletionPolicy: retain',
    ].join('\n');
    expect(errorsOf(text)).toEqual([]);
  });

  it.each([
    ['new-schema', ['  mode: new-schema', '  schema: crm_s']],
    [
      'new-connection (postgres)',
      ['  mode: new-connection', '  connection: { url: "postgres://u:p@db:5432" }'],
    ],
    [
      'new-connection (mysql)',
      ['  mode: new-connection', '  connection: { url: "mysql://root@127.0.0.1:3306/" }'],
    ],
  ])('accepts database mode %s', (_mode, lines) => {
    expect(errorsOf(manifest('x', 'database:', ...lines))).toEqual([]);
  });
});

describe('syntax errors at the place to fix', () => {
  it('reports an unclosed quote at the line:column where it opens, not at the end of the file', () => {
    const text =
      'apiVersion: appvisor/v1\nkind: App\nname: "crm\ndisplayName: CRM\ndomains: [crm.example.com]\n';
    const result = validateManifestText(text, 'apps.d/crm.yaml', {});
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.invalid.errors).toEqual([
      {
        file: 'apps.d/crm.yaml',
        line: 3,
        column: 7,
        message: 'YAML syntax error: the quote (") opened here is never closed',
      },
    ]);
  });
});
