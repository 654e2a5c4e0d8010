/**
 * The token benchmark's result record (the `tokens` part of the raw JSON), its goals and its Markdown rendering
 * (bench/results-tokens.md). Goals are reported as met or not met, never asserted.
 */
import type { Goal } from './cluster-report.js';
import type { LoadShape, TargetResult } from './load.js';
import { median, type MachineInfo } from './report.js';

/** keymesh over oidc-provider, tokens per second at `POST /token`. */
export const ISSUE_RATIO_GOAL = 3;
/** `createToken` over a bare synchronous `crypto.sign` of the same bytes. */
export const CREATE_TOKEN_RATIO_GOAL = 0.5;

/** Repeated runs of one in-process loop. */
export interface InProcessLoop {
  readonly name: string;
  readonly opsPerSecond: number[];
  readonly stealPercent: number[];
  readonly median: number;
}

/** Introspection load on one node of the 3-node cluster. */
export interface IntrospectionNode {
  readonly name: string;
  /** Whether this node is the replica of the token's `revoked/<jti>` register key (replication factor 1). */
  readonly holdsRevocationKey: boolean;
  readonly result: TargetResult;
  readonly median: number;
}

export interface TokensResults {
  readonly date: string;
  readonly durationSeconds: number;
  readonly machine: MachineInfo;
  readonly loadAverage: { readonly start: number; readonly end: number };
  /** How the server processes and this process (load generator, in-process loops) were placed on CPUs. */
  readonly placement: string;
  readonly shape: LoadShape;
  readonly inProcessMs: { readonly warmup: number; readonly measured: number };
  readonly issue: {
    readonly oidcProviderVersion: string;
    readonly clientCredentials: TargetResult;
    readonly exchange: TargetResult;
    readonly oidcProvider: TargetResult;
    /** SAML 2.0 assertions for the same client on the same node (absent in results of earlier runs). */
    readonly saml?: TargetResult;
    /** What one answer of each looked like (checked before the load). */
    readonly checks: readonly string[];
    /** Whether `/token` issued an SCT (`requested_token_type` of WS-SecureConversation 200512), and what it answered. */
    readonly sctAtToken: string;
  };
  readonly inProcess: {
    readonly createToken: InProcessLoop;
    readonly cryptoSign: InProcessLoop;
    readonly joseSignJwt: InProcessLoop;
    readonly validateToken: InProcessLoop;
    readonly sctValidate: InProcessLoop;
    readonly sctValidateWithKey: InProcessLoop;
    readonly signingInputBytes: number;
  };
  readonly introspection: {
    readonly placement: string;
    readonly revocationKey: string;
    readonly nodes: readonly IntrospectionNode[];
  };
  readonly goals: readonly Goal[];
}

export const medianRps = (t: TargetResult) => median(t.samples.map((s) => s.requestsPerSecond));

/**
 * keymesh over an anchor as the median of the per-round ratios: round i of `a` over round i of `b`, the two runs
 * of one round being back to back, so a slow spell of the machine falls on both sides of a ratio.
 */
export function pairedRatio(a: TargetResult, b: TargetResult): { median: number; rounds: number[] } {
  const rounds = a.samples
    .slice(0, b.samples.length)
    .map((s, i) => s.requestsPerSecond / b.samples[i]!.requestsPerSecond);
  return { median: median(rounds), rounds };
}

function goalAtLeast(what: string, limit: number, measured: number): Goal {
  return { what, limit, measured, met: measured >= limit };
}

/**
 * The goals of the issue: keymesh ≥ 3× oidc-provider (both grants, as the median of the per-round ratios),
 * createToken ≥ 0.5× a bare crypto.sign.
 */
export function tokensGoals(r: Omit<TokensResults, 'goals'>): Goal[] {
  const oidc = r.issue.oidcProvider;
  return [
    goalAtLeast(
      'client_credentials: keymesh / oidc-provider',
      ISSUE_RATIO_GOAL,
      pairedRatio(r.issue.clientCredentials, oidc).median,
    ),
    goalAtLeast(
      'token exchange: keymesh / oidc-provider client_credentials',
      ISSUE_RATIO_GOAL,
      pairedRatio(r.issue.exchange, oidc).median,
    ),
    goalAtLeast(
      'createToken / crypto.sign',
      CREATE_TOKEN_RATIO_GOAL,
      r.inProcess.createToken.median / r.inProcess.cryptoSign.median,
    ),
  ];
}

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const goalText = (g: Goal | undefined) => (g === undefined ? '–' : `≥ ${g.limit}: ${g.met ? 'met' : '**not met**'}`);
const NOISY_STEAL_PERCENT = 5;
/** A paired ratio as `median (round 1, round 2, …)`. */
const roundsText = (p: { median: number; rounds: number[] }) =>
  `${p.median.toFixed(2)} (${p.rounds.map((x) => x.toFixed(2)).join(', ')})`;

function loadRow(label: string, t: TargetResult, ratio: string, goal: string): string {
  const m = (pick: (x: TargetResult['samples'][number]) => number) => median(t.samples.map(pick));
  return `| ${label} | ${int(medianRps(t))} | ${m((x) => x.latencyP50Ms)} / ${m((x) => x.latencyP99Ms)} | ${ratio} | ${goal} |`;
}

function runRow(t: TargetResult): string {
  const m = (pick: (x: TargetResult['samples'][number]) => number) => median(t.samples.map(pick));
  return (
    `| ${t.name} | ${t.samples.map((x) => int(x.requestsPerSecond)).join(', ')} | ${int(m((x) => x.bytesPerResponse))} | ` +
    `${int(m((x) => x.serverCpuPercent))}% | ${int(m((x) => x.loadGenCpuPercent))}% | ${int(Math.max(...t.samples.map((x) => x.stealPercent)))}% |`
  );
}

function introspectionRow(n: IntrospectionNode, holder: IntrospectionNode | undefined): string {
  const m = (pick: (x: TargetResult['samples'][number]) => number) => median(n.result.samples.map(pick));
  const where = n.holdsRevocationKey ? 'yes: read from its own register' : 'no: the read is forwarded to the holder';
  return `| ${n.name} | ${where} | ${int(n.median)} | ${m((x) => x.latencyP50Ms)} / ${m((x) => x.latencyP99Ms)} | ${holder ? (n.median / holder.median).toFixed(2) : '–'} |`;
}

function loopRow(label: string, l: InProcessLoop, ratio?: string, goal?: string): string {
  const tail = ratio === undefined ? '' : ` ${ratio} | ${goal ?? '–'} |`;
  return `| ${label} | ${int(l.median)} | ${l.opsPerSecond.map(int).join(', ')} |${tail}`;
}

export function renderTokensMarkdown(r: TokensResults): string {
  const { issue, inProcess: p, introspection: x, shape } = r;
  const oidc = medianRps(issue.oidcProvider);
  const [ccGoal, exGoal, createGoal] = r.goals;
  const targets = [
    issue.clientCredentials,
    issue.exchange,
    issue.oidcProvider,
    ...(issue.saml ? [issue.saml] : []),
    ...x.nodes.map((n) => n.result),
  ];
  const loops = [p.createToken, p.cryptoSign, p.joseSignJwt, p.validateToken, p.sctValidate, p.sctValidateWithKey];
  const steal = Math.max(
    0,
    ...targets.flatMap((t) => t.samples.map((s) => s.stealPercent)),
    ...loops.flatMap((l) => l.stealPercent),
  );
  const holder = x.nodes.find((n) => n.holdsRevocationKey);
  const others = x.nodes.filter((n) => !n.holdsRevocationKey).map((n) => n.median);
  const sign = p.cryptoSign.median;
  return [
    '# keymesh token benchmark',
    '',
    `${r.date} · ${r.machine.cpuModel} × ${r.machine.cpuCount} · ${(r.machine.totalMemoryBytes / 2 ** 30).toFixed(1)} GiB RAM · Node ${r.machine.node} · ` +
      `${r.machine.platform} ${r.machine.release} ${r.machine.arch} · run took ${Math.round(r.durationSeconds)} s`,
    '',
    `CPU placement: ${r.placement}.`,
    `Load: autocannon, ${shape.connections} keep-alive connections, pipelining ${shape.pipelining}, ${shape.warmupSeconds} s warm-up + ${shape.durationSeconds} s ` +
      `measured per run, targets interleaved, median of ${shape.repetitions} runs. In-process loops: sequential, ${r.inProcessMs.warmup} ms warm-up + ` +
      `${r.inProcessMs.measured} ms measured, interleaved, median of ${shape.repetitions}.`,
    steal > NOISY_STEAL_PERCENT
      ? `**Noisy machine:** the hypervisor took up to ${int(steal)}% of the CPU time during a run (steal); compare the runs below before trusting a ratio.`
      : `Hypervisor steal stayed at or below ${int(steal)}% in every run.`,
    `One-minute load average ${r.loadAverage.start.toFixed(2)} at the start, ${r.loadAverage.end.toFixed(2)} at the end (the machine is shared).`,
    '',
    '## Issuing: `POST /token` on one node against oidc-provider',
    '',
    `One \`keymesh start\` process (replication factor 1) and oidc-provider ${issue.oidcProviderVersion} in a process of its own, both ES256 JWT access tokens ` +
      "(`typ: at+jwt`), `client_secret_basic`. keymesh checks the client's scrypt hash once and an HMAC of the secret per request after that; oidc-provider " +
      'compares the secret it was configured with. The exchange verifies the subject token (jose), reads its `revoked/<jti>` record, and signs a new token.',
    '',
    '| Measurement | tokens/s | p50 / p99 (ms) | keymesh / oidc-provider (median of the rounds) | Goal |',
    '|---|---:|---:|---:|---|',
    loadRow(
      'keymesh `client_credentials`',
      issue.clientCredentials,
      roundsText(pairedRatio(issue.clientCredentials, issue.oidcProvider)),
      goalText(ccGoal),
    ),
    loadRow(
      'keymesh token exchange (RFC 8693, access-token subject, on behalf of)',
      issue.exchange,
      roundsText(pairedRatio(issue.exchange, issue.oidcProvider)),
      goalText(exGoal),
    ),
    loadRow(
      `oidc-provider ${issue.oidcProviderVersion} \`client_credentials\` (JWT, ES256)`,
      issue.oidcProvider,
      '–',
      '–',
    ),
    ...(issue.saml
      ? [
          loadRow(
            `keymesh SAML 2.0 assertion (\`client_credentials\`, ECDSA-SHA256; ${(medianRps(issue.saml) / medianRps(issue.clientCredentials)).toFixed(2)}× keymesh's JWT)`,
            issue.saml,
            (medianRps(issue.saml) / oidc).toFixed(2),
            '–',
          ),
        ]
      : []),
    '',
    ...issue.checks.map((c) => `- ${c}`),
    `- SCT at \`/token\`: ${issue.sctAtToken}`,
    '',
    "## Signing in-process: `JwtAccessTokenProvider.createToken` against the machine's limit",
    '',
    `Same key (ES256, P-256), same claims; the limit is a bare synchronous \`crypto.sign('sha256', …, {dsaEncoding: 'ieee-p1363'})\` of the ${p.signingInputBytes}-byte signing input of a token createToken made.`,
    '',
    '| Loop | ops/s (median) | per run | over `crypto.sign` | Goal |',
    '|---|---:|---|---:|---|',
    loopRow('`crypto.sign` of the same bytes (the limit)', p.cryptoSign, '1.00', '–'),
    loopRow(
      '`createToken` (claims, JSON, base64url, sign)',
      p.createToken,
      (p.createToken.median / sign).toFixed(2),
      goalText(createGoal),
    ),
    loopRow(
      'jose `SignJWT` of the same claims (reference)',
      p.joseSignJwt,
      (p.joseSignJwt.median / sign).toFixed(2),
      '–',
    ),
    '',
    '## Validating',
    '',
    'In-process (this process, sequential): what introspection and SCT validation cost without HTTP or the register.',
    '',
    '| Loop | ops/s (median) | per run |',
    '|---|---:|---|',
    loopRow(
      '`JwtAccessTokenProvider.validateToken` (jose verify, revocation check answered from memory)',
      p.validateToken,
    ),
    loopRow('SCT `validateToken`, in-memory token store, caller not its audience (active + claims)', p.sctValidate),
    loopRow(
      'SCT `validateToken` by its audience: the key returned as a JWE to its POP key (ECDH-ES+A256KW)',
      p.sctValidateWithKey,
    ),
    '',
    `\`POST /introspect\` (\`client_secret_basic\`) on a 3-node cluster, replication factor 1. ${x.placement}`,
    '',
    '| Node | holds `revoked/<jti>` | introspections/s | p50 / p99 (ms) | over the holder |',
    '|---|---|---:|---:|---:|',
    ...x.nodes.map((n) => introspectionRow(n, holder)),
    '',
    holder && others.length > 0
      ? `Introspection where the revocation record lives on another node: ${int(Math.min(...others))}–${int(Math.max(...others))}/s against ${int(holder.median)}/s on the node that holds it ` +
        `(${(100 * (1 - Math.max(...others) / holder.median)).toFixed(0)}–${(100 * (1 - Math.min(...others) / holder.median)).toFixed(0)}% fewer).`
      : 'No node was found to hold the revocation key.',
    '',
    '## Runs',
    '',
    'Per run: requests/second (mean of per-second samples). Server and load-generator CPU are % of one core during the measured run (median); steal is the highest of the runs.',
    '',
    '| Target | req/s per run | Bytes/response | Server CPU | Load-gen CPU | Steal |',
    '|---|---|---:|---:|---:|---:|',
    ...targets.map(runRow),
    '',
  ].join('\n');
}
