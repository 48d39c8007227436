// The console: schema beside, SQL and named-query forms, paged results, downloads, cohort export.
import { $, el } from "/static/dom.js";

const state = { request: null, page: 0 };  // request: {sql, params} or {query, params}

async function api(path, body) {
  const init = body === undefined ? {} : { method: "POST", headers: { "Content-Type": "application/json" },
                                           body: JSON.stringify(body) };
  const response = await fetch(path, init);
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || `${response.status} ${response.statusText}`);
  return data;
}

function showError(message) { $("error").textContent = message || ""; }

async function loadSidebar() {
  const info = await api("/api/info");
  $("snapshot").textContent = `snapshot ${info.snapshot_id} · ${info.root}`;
  for (const f of info.formats) $("export-format").append(el("option", { value: f, text: f }));
  for (const t of await api("/api/schema")) {
    const columns = el("div", { class: "columns" }, ...t.columns.map((c) =>
      el("div", {}, el("code", { text: c.name }), ` ${c.type} — `, el("span", { class: "muted", text: c.description }))));
    $("schema").append(el("details", { "data-table": t.table },
      el("summary", { text: `${t.table} (${t.rows ?? 0} rows)`, title: t.description }),
      el("p", { class: "muted", text: t.description }), columns));
  }
  for (const q of await api("/api/queries")) {
    $("queries").append(el("div", {}, el("a", { href: "#", "data-query": q.name, text: q.name, title: q.description,
                                               onclick: (e) => { e.preventDefault(); showQuery(q); } })));
  }
}

function paramInput(p) {
  const id = `param-${p.name}`;
  let input;
  if (p.choices.length) {
    input = el("select", { id, name: p.name });
    if (!p.required) input.append(el("option", { value: "", text: p.default === null ? "(any)" : `(default ${p.default})` }));
    for (const c of p.choices) input.append(el("option", { value: c, text: c }));
  } else if (p.type === "bool") {
    input = el("select", { id, name: p.name }, el("option", { value: "", text: `(default ${p.default})` }),
               el("option", { value: "true", text: "true" }), el("option", { value: "false", text: "false" }));
  } else {
    const type = p.type === "int" || p.type === "float" ? "number" : "text";
    input = el("input", { id, name: p.name, type, placeholder: p.default === null ? "" : String(p.default) });
    if (p.type === "float") input.step = "any";
    if (p.type === "region") { input.setAttribute("list", "region-list"); input.addEventListener("input", suggestRegions); }
    if (p.type === "term") { input.setAttribute("list", "term-list"); input.addEventListener("input", suggestTerms); }
  }
  return el("label", { title: p.description }, el("span", { text: `${p.name}${p.required ? " *" : ""} (${p.type})` }), input);
}

function showQuery(q) {
  $("query-form").hidden = false;
  $("query-form").dataset.name = q.name;
  $("query-title").textContent = q.name;
  $("query-description").textContent = q.description;
  $("query-params").replaceChildren(...q.params.map(paramInput));
  for (const [k, v] of Object.entries(q.example || {})) { const i = $(`param-${k}`); if (i) i.value = v; }
}

async function suggestRegions(event) {
  const text = event.target.value.split(",").pop().trim();
  if (!text) return;
  const hits = await api(`/api/regions?q=${encodeURIComponent(text)}`);
  $("region-list").replaceChildren(...hits.map((h) => el("option", { value: h.name })));
}

async function suggestTerms(event) {
  const text = event.target.value.trim();
  if (!text) return;
  const hits = await api(`/api/terms?q=${encodeURIComponent(text)}`);
  $("term-list").replaceChildren(...hits.map((t) => el("option", { value: t })));
}

function renderResult(data) {
  const hasCase = data.columns.includes("case_id");
  const head = el("tr", {}, ...data.columns.map((c, i) => el("th", { title: data.types[i], text: c })));
  const body = data.rows.map((row) => el("tr", {}, ...row.map((v, i) => {
    const text = v === null ? "null" : typeof v === "object" ? JSON.stringify(v) : String(v);
    if (data.columns[i] === "case_id" && v !== null) {
      return el("td", {}, el("a", { href: `/open?case_id=${encodeURIComponent(v)}`, class: "case-link", text }));
    }
    return el("td", { text });
  })));
  $("result").replaceChildren(el("table", { class: "result" }, el("thead", {}, head), el("tbody", {}, ...body)));
  const first = data.page * data.page_size;
  $("result-bar").hidden = false;
  $("result-count").textContent = data.rows.length ? `rows ${first + 1}–${first + data.rows.length}${data.more ? "+" : ""} · ${data.seconds}s`
                                                   : "no rows";
  $("prev").disabled = data.page === 0;
  $("next").disabled = !data.more;
  const q = new URLSearchParams({ params: JSON.stringify(state.request.params || {}) });
  if (state.request.sql !== undefined) q.set("sql", state.request.sql); else q.set("query", state.request.query);
  $("csv").href = `/api/download?${q}&format=csv`;
  $("parquet").href = `/api/download?${q}&format=parquet`;
  $("export").hidden = !hasCase;
  $("export-run").disabled = true;
  $("export-summary").textContent = "";
}

async function run(page = 0) {
  showError("");
  state.page = page;
  const body = { params: state.request.params || {}, page };
  try {
    const data = state.request.sql !== undefined
      ? await api("/api/sql", { ...body, sql: state.request.sql })
      : await api(`/api/query/${encodeURIComponent(state.request.query)}`, body);
    renderResult(data);
  } catch (e) {
    showError(e.message);
    $("result").replaceChildren();
    $("result-bar").hidden = true;
    $("export").hidden = true;
  }
}

async function exportCohort(dryRun) {
  showError("");
  const body = { ...state.request, name: $("export-name").value, format: $("export-format").value,
                 images: $("export-images").checked, masks: $("export-masks").value, crop: $("export-crop").value,
                 dry_run: dryRun };
  try {
    const out = await api("/api/export", body);
    $("export-summary").textContent = out.summary + (out.notes.length ? ` — ${out.notes.join("; ")}` : "");
    $("export-run").disabled = !dryRun;
  } catch (e) { showError(e.message); }
}

$("run-sql").addEventListener("click", () => { state.request = { sql: $("sql").value, params: {} }; run(0); });
$("run-query").addEventListener("click", () => {
  const params = {};
  for (const input of $("query-params").querySelectorAll("input, select")) if (input.value !== "") params[input.name] = input.value;
  state.request = { query: $("query-form").dataset.name, params };
  run(0);
});
$("prev").addEventListener("click", () => run(state.page - 1));
$("next").addEventListener("click", () => run(state.page + 1));
$("export-count").addEventListener("click", () => exportCohort(true));
$("export-run").addEventListener("click", () => exportCohort(false));
for (const id of ["export-masks", "export-crop"]) $(id).addEventListener("input", suggestRegions);
loadSidebar().then(() => { document.body.dataset.ready = "true"; }).catch((e) => showError(e.message));
