/**
 * The picture of a chaos run (`latency.svg`), a self-contained SVG built as plain strings. The top panel plots
 * every operation's latency against the second it was invoked, on a log scale from 1 ms to 30 s: ok operations as
 * small dots coloured by kind, failures as red crosses, unknown outcomes as orange triangles, pending operations
 * as hollow orange triangles on the top edge. The bottom panel shows errors (fail + unknown) per second, counted
 * at the time they completed. Fault windows are shaded across both panels, a colour per fault kind, and labelled
 * at the top. Above `MAX_OK_DOTS` ok operations an evenly spaced sample of them is drawn, so the file stays small;
 * failures are always all drawn.
 */
import type { FaultKind, OpKind } from './history.js';
import { byOpKindOrder, latencyMs, windowNodes, type CompletedOp, type FaultWindow } from './liveness.js';

/** At most this many ok operations are drawn as dots. Default is 20,000. */
export const MAX_OK_DOTS = 20_000;

const WIDTH = 1000;
const HEIGHT = 460;
const LEFT = 70;
const RIGHT = WIDTH - 20;
const TOP_Y = 70;
const TOP_BOTTOM_Y = 300;
const ERR_Y = 325;
const ERR_BOTTOM_Y = 415;
const MIN_LATENCY_MS = 1;
const MAX_LATENCY_MS = 30_000;
const LATENCY_TICKS: ReadonlyArray<readonly [number, string]> = [
  [1, '1 ms'],
  [10, '10 ms'],
  [100, '100 ms'],
  [1000, '1 s'],
  [10_000, '10 s'],
];
/** Rough width of one character of a 9 px label, to keep labels inside the plot. */
const LABEL_CHAR_WIDTH = 5;
const FAIL_COLOUR = '#d62728';
const UNKNOWN_COLOUR = '#ff7f0e';

const OP_COLOURS: Readonly<Record<OpKind, string>> = {
  secret: '#1f77b4',
  issue: '#2ca02c',
  verify: '#9467bd',
  'sct-create': '#8c564b',
  'sct-validate': '#e377c2',
  revoke: '#17becf',
  rotate: '#7f7f7f',
  'key-revoke': '#bcbd22',
};

const FAULT_COLOURS: Readonly<Record<FaultKind, string>> = {
  kill: '#e41a1c',
  pause: '#377eb8',
  partition: '#984ea3',
  skew: '#4daf4a',
  'kill-after-accept': '#ff7f00',
  wipe: '#a65628',
  netdrop: '#6a3d9a',
  oneway: '#cab2d6',
  bridge: '#f781bf',
};

/** Escapes text for SVG content and attribute values. */
export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const num = (n: number) => String(Math.round(n * 10) / 10);

/** A tick step in seconds that gives at most about ten ticks over `spanS`. */
function tickStepS(spanS: number): number {
  for (const step of [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600]) if (spanS / step <= 10) return step;
  return Math.ceil(spanS / 10 / 3600) * 3600;
}

/** Every `ok.length / max`-th operation, or all of them when there are at most `max`. */
function sample<T>(items: readonly T[], max: number): readonly T[] {
  if (items.length <= max) return items;
  const step = items.length / max;
  return Array.from({ length: max }, (_, i) => items[Math.floor(i * step)]!);
}

/** Renders the picture; `start` and `end` are the run's wall-clock bounds (ms since the epoch). */
export function renderSvg(input: {
  readonly ops: readonly CompletedOp[];
  readonly windows: readonly FaultWindow[];
  readonly start: number;
  readonly end: number;
}): string {
  const { ops, windows, start } = input;
  const spanMs = Math.max(input.end - start, 1);
  const x = (t: number) => LEFT + (Math.min(Math.max(t - start, 0), spanMs) / spanMs) * (RIGHT - LEFT);
  const logMax = Math.log10(MAX_LATENCY_MS / MIN_LATENCY_MS);
  const y = (ms: number) => {
    const clamped = Math.min(Math.max(ms, MIN_LATENCY_MS), MAX_LATENCY_MS);
    return TOP_BOTTOM_Y - (Math.log10(clamped / MIN_LATENCY_MS) / logMax) * (TOP_BOTTOM_Y - TOP_Y);
  };
  const out: string[] = [];
  const okOps = ops.filter((op) => op.outcome === 'ok');
  const shown = sample(okOps, MAX_OK_DOTS);
  const subtitle =
    shown.length < okOps.length ? ` (dots: an even sample of ${shown.length} of ${okOps.length} ok operations)` : '';

  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" ` +
      'font-family="sans-serif" font-size="11">',
    `<rect x="0" y="0" width="${WIDTH}" height="${HEIGHT}" fill="#ffffff"/>`,
    `<text x="${WIDTH / 2}" y="18" text-anchor="middle" font-size="14">${escapeXml(`Latency and errors over time${subtitle}`)}</text>`,
  );

  // Fault windows first, so that the points are drawn over them.
  out.push('<g fill-opacity="0.12">');
  for (const w of windows) {
    const x0 = x(w.start);
    const x1 = x(w.end ?? input.end);
    out.push(
      `<rect class="fault" x="${num(x0)}" y="${TOP_Y}" width="${num(Math.max(x1 - x0, 1))}" height="${ERR_BOTTOM_Y - TOP_Y}" ` +
        `fill="${FAULT_COLOURS[w.kind] ?? '#999999'}"/>`,
    );
  }
  out.push('</g>');
  out.push('<g font-size="9">');
  windows.forEach((w, i) => {
    const label = `${w.kind} ${windowNodes(w)}${w.end === undefined ? ' (not ended)' : ''}`;
    // A label that would run past the right edge ends there instead.
    const fits = x(w.start) + 2 + label.length * LABEL_CHAR_WIDTH <= RIGHT;
    const at = fits ? `x="${num(x(w.start) + 2)}"` : `x="${RIGHT - 2}" text-anchor="end"`;
    out.push(
      `<text ${at} y="${TOP_Y + 10 + (i % 3) * 10}" fill="${FAULT_COLOURS[w.kind] ?? '#555555'}">${escapeXml(label)}</text>`,
    );
  });
  out.push('</g>');

  // Axes and grid.
  out.push('<g stroke="#cccccc" stroke-width="0.5">');
  for (const [ms] of LATENCY_TICKS)
    out.push(`<line x1="${LEFT}" y1="${num(y(ms))}" x2="${RIGHT}" y2="${num(y(ms))}"/>`);
  out.push('</g>');
  out.push('<g stroke="#000000" fill="none">');
  out.push(`<rect x="${LEFT}" y="${TOP_Y}" width="${RIGHT - LEFT}" height="${TOP_BOTTOM_Y - TOP_Y}"/>`);
  out.push(`<rect x="${LEFT}" y="${ERR_Y}" width="${RIGHT - LEFT}" height="${ERR_BOTTOM_Y - ERR_Y}"/>`);
  out.push('</g>');
  out.push('<g text-anchor="end">');
  for (const [ms, label] of LATENCY_TICKS) out.push(`<text x="${LEFT - 4}" y="${num(y(ms) + 4)}">${label}</text>`);
  out.push('</g>');
  const stepS = tickStepS(spanMs / 1000);
  out.push('<g text-anchor="middle">');
  for (let s = 0; s * 1000 <= spanMs; s += stepS)
    out.push(`<text x="${num(x(start + s * 1000))}" y="${ERR_BOTTOM_Y + 14}">${s}</text>`);
  out.push(`<text x="${(LEFT + RIGHT) / 2}" y="${HEIGHT - 12}">seconds since start</text>`);
  out.push(`<text transform="translate(16 ${(TOP_Y + TOP_BOTTOM_Y) / 2}) rotate(-90)">latency (log scale)</text>`);
  out.push(`<text transform="translate(16 ${(ERR_Y + ERR_BOTTOM_Y) / 2}) rotate(-90)">errors/s</text>`);
  out.push('</g>');

  // Latency points: ok dots per kind, then failures over them.
  const kinds = [...new Set(okOps.map((op) => op.op))].sort(byOpKindOrder);
  for (const kind of kinds) {
    out.push(`<g fill="${OP_COLOURS[kind] ?? '#333333'}">`);
    for (const op of shown) {
      if (op.op === kind)
        out.push(`<circle cx="${num(x(op.invokedAt))}" cy="${num(y(latencyMs(op) ?? MAX_LATENCY_MS))}" r="1.6"/>`);
    }
    out.push('</g>');
  }
  out.push(`<g stroke="${FAIL_COLOUR}" stroke-width="1.2">`);
  for (const op of ops) {
    if (op.outcome !== 'fail') continue;
    const cx = x(op.invokedAt);
    const cy = y(latencyMs(op) ?? MAX_LATENCY_MS);
    out.push(
      `<path d="M${num(cx - 3)} ${num(cy - 3)}L${num(cx + 3)} ${num(cy + 3)}M${num(cx - 3)} ${num(cy + 3)}L${num(cx + 3)} ${num(cy - 3)}"/>`,
    );
  }
  out.push('</g>');
  const triangle = (cx: number, cy: number) =>
    `M${num(cx)} ${num(cy - 3.5)}L${num(cx + 3)} ${num(cy + 2)}L${num(cx - 3)} ${num(cy + 2)}Z`;
  out.push(`<g fill="${UNKNOWN_COLOUR}">`);
  for (const op of ops)
    if (op.outcome === 'unknown')
      out.push(`<path d="${triangle(x(op.invokedAt), y(latencyMs(op) ?? MAX_LATENCY_MS))}"/>`);
  out.push('</g>');
  out.push(`<g fill="none" stroke="${UNKNOWN_COLOUR}">`);
  for (const op of ops) if (op.outcome === 'pending') out.push(`<path d="${triangle(x(op.invokedAt), TOP_Y + 4)}"/>`);
  out.push('</g>');

  // Errors per second, in buckets of whole seconds no narrower than a pixel.
  const bucketS = Math.max(1, Math.ceil(spanMs / 1000 / (RIGHT - LEFT)));
  const buckets = new Map<number, number>();
  for (const op of ops) {
    if (op.outcome !== 'fail' && op.outcome !== 'unknown') continue;
    const b = Math.floor(Math.max((op.doneAt ?? op.invokedAt) - start, 0) / 1000 / bucketS);
    buckets.set(b, (buckets.get(b) ?? 0) + 1);
  }
  const maxRate = Math.max(1, ...[...buckets.values()].map((n) => n / bucketS));
  out.push(`<g fill="${FAIL_COLOUR}">`);
  for (const [b, n] of [...buckets].sort((p, q) => p[0] - q[0])) {
    const x0 = x(start + b * bucketS * 1000);
    const x1 = x(start + (b + 1) * bucketS * 1000);
    const h = (n / bucketS / maxRate) * (ERR_BOTTOM_Y - ERR_Y);
    out.push(
      `<rect x="${num(x0)}" y="${num(ERR_BOTTOM_Y - h)}" width="${num(Math.max(x1 - x0 - 0.5, 0.5))}" height="${num(h)}"/>`,
    );
  }
  out.push('</g>');
  out.push('<g text-anchor="end">');
  out.push(`<text x="${LEFT - 4}" y="${ERR_Y + 4}">${num(maxRate)}</text>`);
  out.push(`<text x="${LEFT - 4}" y="${ERR_BOTTOM_Y}">0</text>`);
  out.push('</g>');

  out.push(legend(kinds));
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/** The legend row under the title: one dot per ok kind drawn, then the failure, unknown and pending marks. */
function legend(kinds: readonly OpKind[]): string {
  const parts: string[] = ['<g>'];
  let at = LEFT;
  const ly = 44;
  for (const kind of kinds) {
    parts.push(`<circle cx="${at + 3}" cy="${ly - 4}" r="3" fill="${OP_COLOURS[kind] ?? '#333333'}"/>`);
    parts.push(`<text x="${at + 10}" y="${ly}">${escapeXml(kind)}</text>`);
    at += 16 + kind.length * 6.5;
  }
  parts.push(
    `<path d="M${at} ${ly - 7}L${at + 6} ${ly - 1}M${at} ${ly - 1}L${at + 6} ${ly - 7}" stroke="${FAIL_COLOUR}" stroke-width="1.2"/>`,
  );
  parts.push(`<text x="${at + 10}" y="${ly}">fail</text>`);
  at += 40;
  parts.push(`<path d="M${at + 3} ${ly - 8}L${at + 6} ${ly - 2}L${at} ${ly - 2}Z" fill="${UNKNOWN_COLOUR}"/>`);
  parts.push(`<text x="${at + 10}" y="${ly}">unknown</text>`);
  at += 64;
  parts.push(
    `<path d="M${at + 3} ${ly - 8}L${at + 6} ${ly - 2}L${at} ${ly - 2}Z" fill="none" stroke="${UNKNOWN_COLOUR}"/>`,
  );
  parts.push(`<text x="${at + 10}" y="${ly}">pending (top edge)</text>`);
  at += 130;
  parts.push(
    `<rect x="${at}" y="${ly - 9}" width="10" height="10" fill="#984ea3" fill-opacity="0.12" stroke="#984ea3" stroke-width="0.5"/>`,
  );
  parts.push(`<text x="${at + 14}" y="${ly}">fault window</text>`);
  parts.push('</g>');
  return parts.join('\n');
}
