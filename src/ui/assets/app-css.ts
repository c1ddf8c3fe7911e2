// The dashboard's stylesheet, served at /assets/app.css (a string so dist needs no copied files).
// System fonts, no external assets; one column under 700 px wide, tables scroll sideways.
export const APP_CSS = String.raw`
:root {
  --bg: #f6f7f9; --card: #fff; --text: #1d232b; --muted: #667085; --border: #d9dde3;
  --accent: #2358c7; --accent-text: #fff; --danger: #b42318; --ok: #067647; --warn: #b54708;
  color-scheme: light;
}
* { box-sizing: border-box; }
[hidden] { display: none !important; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; background: var(--bg); color: var(--text);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
a { color: var(--accent); }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 0.9em; }
h1 { font-size: 1.5rem; margin: 0.2rem 0 0.8rem; }
h2 { font-size: 1.15rem; margin: 0 0 0.6rem; }
h3 { font-size: 1rem; margin: 1rem 0 0.4rem; }
.top { display: flex; flex-wrap: wrap; align-items: center; justify-content: space-between; gap: 0.5rem 1rem;
  padding: 0.6rem 1rem; background: #14213d; color: #fff; }
.top a { color: #fff; text-decoration: none; }
.top .brand { font-weight: 700; font-size: 1.1rem; letter-spacing: 0.02em; }
.top nav { display: flex; flex-wrap: wrap; align-items: center; gap: 0.3rem 1rem; }
.top nav a:hover, .top .link:hover { text-decoration: underline; }
.top .link { color: #fff; }
main { max-width: 1100px; margin: 0 auto; padding: 1rem; }
.card { background: var(--card); border: 1px solid var(--border); border-radius: 8px; padding: 1rem; margin: 0 0 1rem; }
.narrow { max-width: 560px; margin-left: auto; margin-right: auto; }
.heading { display: flex; flex-wrap: wrap; align-items: center; justify-content: space-between; gap: 0.5rem; }
.crumbs { margin: 0 0 0.3rem; color: var(--muted); font-size: 0.9rem; }
.muted { color: var(--muted); }
.small { font-size: 0.85rem; }
.hint { color: var(--muted); font-size: 0.85rem; margin: 0.2rem 0 0.6rem; }
.notice { background: #ecfdf3; border: 1px solid #abefc6; color: var(--ok); padding: 0.6rem 0.8rem; border-radius: 6px; }
.error { background: #fef3f2; border: 1px solid #fecdca; color: var(--danger); padding: 0.6rem 0.8rem; border-radius: 6px; }
.projects { list-style: none; padding: 0; margin: 0 0 1rem; display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 1rem; }
.projects .card { margin: 0; }
.repo { word-break: break-all; margin: 0 0 0.5rem; font-size: 0.85rem; }
.chips { list-style: none; padding: 0; margin: 0; display: flex; flex-wrap: wrap; gap: 0.4rem; }
.chips li { border: 1px solid var(--border); border-radius: 999px; padding: 0.1rem 0.3rem 0.1rem 0.6rem; }
.badge { display: inline-block; padding: 0 0.5rem; border-radius: 999px; font-size: 0.8rem; font-weight: 600;
  background: #eef0f3; color: #344054; white-space: nowrap; }
.state-running, .status-succeeded, .outcome-accepted { background: #dcfae6; color: var(--ok); }
.state-failed, .status-failed { background: #fee4e2; color: var(--danger); }
.state-queued, .state-deploying, .state-stopping, .state-deleting, .status-queued, .status-running { background: #fef0c7; color: var(--warn); }
.state-deleted, .status-canceled, .status-superseded, .outcome-ignored, .outcome-duplicate { background: #eef0f3; color: var(--muted); }
button, .button { display: inline-block; font: inherit; font-size: 0.9rem; line-height: 1.3; padding: 0.4rem 0.8rem;
  border-radius: 6px; border: 1px solid var(--border); background: #fff; color: var(--text); cursor: pointer;
  text-decoration: none; white-space: nowrap; }
button:hover, .button:hover { border-color: #98a2b3; }
button.primary, .button.primary { background: var(--accent); border-color: var(--accent); color: var(--accent-text); }
button.danger, .button.danger { color: var(--danger); border-color: #fda29b; }
button.link { background: none; border: none; padding: 0; }
button.small { padding: 0.15rem 0.5rem; font-size: 0.8rem; }
form.inline { display: inline; margin: 0; }
.form label, .narrow label { display: block; font-weight: 600; margin: 0.6rem 0 0.2rem; }
label.check { display: flex; align-items: center; gap: 0.4rem; font-weight: 400; margin: 0.3rem 0; }
input:not([type=checkbox]), textarea { width: 100%; font: inherit; font-weight: 400; padding: 0.45rem 0.6rem; border: 1px solid var(--border);
  border-radius: 6px; background: #fff; color: var(--text); }
textarea { font-family: ui-monospace, Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 0.9rem; }
input:focus, textarea:focus, button:focus-visible, a:focus-visible { outline: 2px solid var(--accent); outline-offset: 1px; }
fieldset { border: 1px solid var(--border); border-radius: 6px; margin: 1rem 0; padding: 0.5rem 0.8rem 0.8rem; }
legend { font-weight: 600; padding: 0 0.3rem; }
.form button[type=submit], .narrow form button[type=submit] { margin-top: 0.8rem; }
.row { display: flex; flex-wrap: wrap; align-items: flex-end; gap: 0.6rem; }
.row label { flex: 1 1 200px; font-weight: 600; }
.row label input { margin-top: 0.2rem; }
.env-names { list-style: none; padding: 0; margin: 0 0 0.5rem; }
.env-name { display: inline-block; margin: 0 0.4rem 0.2rem 0; background: #eef0f3; padding: 0 0.4rem; border-radius: 4px; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0.3rem 1rem; margin: 0 0 1rem; }
.facts dt { color: var(--muted); }
.facts dd { margin: 0; min-width: 0; overflow-wrap: anywhere; }
.table-wrap { overflow-x: auto; -webkit-overflow-scrolling: touch; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 0.5rem 0.5rem; border-bottom: 1px solid var(--border); vertical-align: top; }
th { font-size: 0.8rem; color: var(--muted); font-weight: 600; text-transform: uppercase; letter-spacing: 0.03em; }
tr.current { background: #f0f5ff; }
tr.gone { opacity: 0.5; }
.actions { display: flex; flex-wrap: wrap; gap: 0.3rem; }
.copyable { display: flex; align-items: flex-start; gap: 0.5rem; margin: 0.3rem 0 0.6rem; }
.copyable code { flex: 1; min-width: 0; background: #f2f4f7; border: 1px solid var(--border); border-radius: 6px;
  padding: 0.4rem 0.6rem; overflow-wrap: anywhere; word-break: break-all; }
details { margin: 0.5rem 0; }
summary { cursor: pointer; color: var(--accent); }
.log { background: #0f1729; color: #e4e7ec; border-radius: 6px; padding: 0.8rem; margin: 0;
  max-height: 65vh; overflow: auto; white-space: pre-wrap; word-break: break-word; font-size: 0.82rem; line-height: 1.45; }
.log .stderr { color: #fda29b; }
.log .system { color: #84caff; }
.add-version { border-top: 1px solid var(--border); margin-top: 1rem; }
@media (max-width: 700px) {
  main { padding: 0.6rem; }
  .card { padding: 0.8rem; }
  .facts { grid-template-columns: 1fr; gap: 0 0; }
  .facts dt { margin-top: 0.4rem; }
  table.versions thead { display: none; }
  table.versions, table.versions tbody, table.versions tr, table.versions td { display: block; width: 100%; }
  table.versions tr { border-bottom: 1px solid var(--border); padding: 0.4rem 0; }
  table.versions td { border: none; padding: 0.2rem 0; }
  table.versions td[data-label]::before { content: attr(data-label) ": "; color: var(--muted); font-size: 0.8rem; }
  table.versions td[data-label="Version"]::before { content: none; }
}
`;
