/**
 * The cluster page's stylesheet (`GET /ui/style.css`), kept as a string so `tsc` carries it into `dist/`. Plain
 * tables, coloured state badges, and one colour per ring member (`seg-0` … `seg-7`) shared by the bar and the
 * legend.
 */

/** The stylesheet of `/ui`. */
export const UI_STYLE = `
:root { color-scheme: light; --fg: #1d2430; --muted: #5c6675; --line: #d9dee5; --bg: #f7f8fa; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 84rem; padding: 1rem 1.5rem 2rem; font: 14px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
h1 { font-size: 1.4rem; margin: 0 0 .25rem; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; }
h3 { font-size: .95rem; margin: 1rem 0 .35rem; color: var(--muted); }
.node-name { color: var(--muted); font-weight: normal; }
#status { margin: 0; color: var(--muted); }
.error { margin: .5rem 0 0; padding: .4rem .6rem; border: 1px solid #d93025; border-radius: 4px; background: #fdecea; color: #a50e0e; }
[hidden] { display: none !important; }
body.stale main { opacity: .55; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); }
th, td { padding: .3rem .55rem; border-bottom: 1px solid var(--line); text-align: left; white-space: nowrap; }
th { font-weight: 600; color: var(--muted); background: #eef1f5; }
td.num, th.num { text-align: right; }
code { font: 12.5px/1.3 ui-monospace, monospace; }
code.kid { display: inline-block; max-width: 16ch; overflow: hidden; text-overflow: ellipsis; vertical-align: bottom; }
.empty { color: var(--muted); font-style: italic; }
.self { color: var(--muted); }
.warn { color: #a50e0e; font-weight: 600; }
.ok { color: #137333; }
.badge { display: inline-block; padding: 0 .5rem; border-radius: 999px; font-size: 12px; font-weight: 600; background: #e3e6ea; color: #3c4450; }
.badge-alive, .badge-active, .badge-normal { background: #e6f4ea; color: #137333; }
.badge-suspect, .badge-pending, .badge-joining { background: #fef7e0; color: #8a5a00; }
.badge-dead, .badge-revoked, .badge-leaving { background: #fce8e6; color: #a50e0e; }
.badge-retired, .badge-expired { background: #e8eaed; color: #5f6368; }
.ring { display: block; width: 100%; height: 1.6rem; margin: .5rem 0; border: 1px solid var(--line); background: #fff; }
.swatch { display: inline-block; width: .8em; height: .8em; margin-right: .4em; border-radius: 2px; vertical-align: baseline; }
.seg-0 { fill: #4285f4; background: #4285f4; }
.seg-1 { fill: #34a853; background: #34a853; }
.seg-2 { fill: #fbbc04; background: #fbbc04; }
.seg-3 { fill: #ea4335; background: #ea4335; }
.seg-4 { fill: #a142f4; background: #a142f4; }
.seg-5 { fill: #24c1e0; background: #24c1e0; }
.seg-6 { fill: #f439a0; background: #f439a0; }
.seg-7 { fill: #80868b; background: #80868b; }
.seg { stroke: #fff; stroke-width: 2; vector-effect: non-scaling-stroke; }
.recent { display: grid; grid-template-columns: repeat(auto-fit, minmax(28rem, 1fr)); gap: 0 1.5rem; }
footer { margin-top: 2rem; color: var(--muted); font-size: 12px; }
@media (max-width: 60rem) { main { overflow-x: auto; } }
`;
