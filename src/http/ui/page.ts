/**
 * The cluster page's HTML shell (`GET /ui`). It names the node and lays out empty sections; `/ui/app.js` fills
 * them from `/ui/state`. No inline script or style anywhere, so the page runs under `default-src 'self'`.
 */

/** The page's Content-Security-Policy: only this origin, no inline code, no framing, no forms. */
export const UI_CSP =
  "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'";

const HTML_ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** `text` with the five HTML special characters escaped. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c);
}

/** The HTML shell for the node named `nodeName`. */
export function renderUiPage(nodeName: string): string {
  const name = escapeHtml(nodeName);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>keymesh · ${name}</title>
<link rel="stylesheet" href="/ui/style.css">
<script src="/ui/app.js" defer></script>
</head>
<body>
<header>
<h1>keymesh <span class="node-name">${name}</span></h1>
<p id="status" role="status">loading…</p>
<p id="error" class="error" role="alert" hidden></p>
</header>
<main>
<section><h2>Members</h2><div id="members"></div></section>
<section><h2>Registrations</h2><div id="registrations"></div></section>
<section><h2>Cluster map and ring</h2><p id="map-summary"></p><div id="ring"></div><div id="map-members"></div></section>
<section><h2>Keys</h2><div id="keys"></div></section>
<section class="recent"><div><h2>Recent rotations</h2><div id="rotations"></div></div><div><h2>Revocations</h2><div id="revocations"></div></div></section>
</main>
<noscript><p>This page needs JavaScript. The same data is served as JSON at <a href="/ui/state">/ui/state</a>.</p></noscript>
<footer>Read-only view of this node, refreshed every 2 s from <a href="/ui/state">/ui/state</a>.</footer>
</body>
</html>
`;
}
