// The case page: the CT in three views (NiiVue), region masks as overlays, the grounded report beside.
// window.viewerState tells tests (and curious users) what is drawn: the overlays' region ids and the crosshair.
import { $, el } from "/static/dom.js";

const key = decodeURIComponent(location.pathname.split("/").pop());
const state = window.viewerState = { ready: false, overlays: [], crosshairMM: null, selected: null, error: null };
let nv = null;
const volumes = new Map();  // region id -> the NiiVue overlay volume

const response = await fetch(`/api/case/${encodeURIComponent(key)}`);
const info = await response.json();
if (!response.ok) {
  document.body.replaceChildren(el("p", { class: "error", text: info.error }), el("a", { href: "/", text: "Back" }));
  throw new Error(info.error);
}
const regions = new Map(info.regions.map((r) => [r.region_id, r]));
document.title = `${info.case_id} · radgenome`;
$("case-title").textContent = info.case_id;
$("snapshot").textContent = `snapshot ${info.snapshot_id}`;

function rgb(r) { return `rgb(${r.rgba[0]}, ${r.rgba[1]}, ${r.rgba[2]})`; }

async function startViewer() {
  if (!info.has_image) throw new Error("this case has no CT image in the snapshot: its report is shown alone");
  let module;
  try { module = await import("/static/vendor/niivue.js"); } catch {
    throw new Error("the viewer is not built into this installation: run `make web` (it vendors NiiVue)");
  }
  nv = new module.Niivue({ backColor: [0, 0, 0, 1], show3Dcrosshair: false, multiplanarShowRender: 0,
                           crosshairColor: [1, 1, 0, 0.6], isColorbar: false });
  await nv.attachTo("viewer");
  const w = info.windows.lung;
  await nv.loadVolumes([{ url: `/api/case/${encodeURIComponent(key)}/image.nii.gz`, name: "ct.nii.gz",
                          colormap: "gray", cal_min: w.level - w.width / 2, cal_max: w.level + w.width / 2 }]);
  nv.setSliceType(nv.sliceTypeMultiplanar);
  for (const [name, win] of Object.entries(info.windows)) {
    $("windows").append(el("button", { "data-window": name, text: name, onclick: () => setWindow(win) }));
  }
}

function setWindow(win) {
  nv.volumes[0].cal_min = win.level - win.width / 2;
  nv.volumes[0].cal_max = win.level + win.width / 2;
  nv.updateGLVolume();
}

async function showRegion(id) {
  if (!nv || volumes.has(id)) return;
  const r = regions.get(id);
  const [red, green, blue] = r.rgba;
  nv.addColormap(`region${id}`, { R: [0, red], G: [0, green], B: [0, blue], A: [0, 255], I: [0, 255] });
  volumes.set(id, null);  // reserved: a second click while loading does nothing
  const volume = await nv.addVolumeFromUrl({ url: `/api/case/${encodeURIComponent(key)}/mask/${id}.nii.gz`,
                                             name: `mask-${id}.nii.gz`, colormap: `region${id}`, opacity: 0.6,
                                             cal_min: 0, cal_max: 1 });
  volumes.set(id, volume);
  syncState();
}

function hideRegion(id) {
  const volume = volumes.get(id);
  if (volume) nv.removeVolume(volume);
  volumes.delete(id);
  syncState();
}

function syncState() {
  state.overlays = [...volumes.keys()].filter((id) => volumes.get(id));
  for (const box of document.querySelectorAll("#regions input")) box.checked = volumes.has(Number(box.value));
}

function centreOn(id) {
  const r = regions.get(id);
  nv.scene.crosshairPos = nv.mm2frac(r.centre_mm);
  nv.drawScene();
  state.crosshairMM = r.centre_mm;
}

// A sentence lists its region's rows; with a mask, it shows the region alone and centres the views on it.
async function selectSentence(node, id) {
  for (const other of document.querySelectorAll(".sentence.active")) other.classList.remove("active");
  node.classList.add("active");
  showPanel(id);
  if (!nv || !regions.get(id).has_mask) return;
  for (const other of [...volumes.keys()]) if (other !== id) hideRegion(other);
  await showRegion(id);
  centreOn(id);
  state.selected = id;
}

function showPanel(id) {
  const r = regions.get(id);
  const under = new Set(r.subtree);
  const sentences = info.sentences.filter((s) => under.has(s.region_id));
  const findings = info.findings.filter((f) => under.has(f.region_id));
  const vqa = info.vqa.filter((q) => under.has(q.region_id));
  $("region-panel").hidden = false;
  $("region-title").replaceChildren(el("span", { class: "swatch", style: `background:${rgb(r)}` }), ` ${r.name}`);
  $("region-details").replaceChildren(
    el("h4", { text: `Sentences (${sentences.length})` }), ...sentences.map((s) => el("p", { text: s.text })),
    el("h4", { text: `Findings (${findings.length})` }),
    ...findings.map((f) => el("p", { text: `${f.term} — ${f.status}${f.size_mm ? `, ${f.size_mm} mm` : ""}` })),
    el("h4", { text: `Question–answer pairs (${vqa.length})` }),
    ...vqa.map((q) => el("p", { text: `${q.question} → ${q.answer}` })));
}

for (const s of info.sentences) {
  const region = s.region_id === null ? null : regions.get(s.region_id);
  const hasMask = Boolean(region && region.has_mask);
  const node = el("div", { class: `sentence${s.is_abnormal ? " abnormal" : ""}${hasMask ? "" : " nomask"}`,
                           "data-region-id": s.region_id ?? "", "data-sentence-id": s.sentence_id,
                           title: hasMask ? `show ${s.region}` : region ? "no mask of this region in this case" : "" },
                  el("span", { class: "path", text: s.anatomy_path || "report" }), s.text);
  if (region) node.addEventListener("click", () => selectSentence(node, s.region_id));
  $("sentences").append(node);
}
for (const r of info.regions) {
  const box = el("input", { type: "checkbox", value: String(r.region_id) });
  box.disabled = !r.has_mask || !info.has_image;
  box.title = r.has_mask ? "" : "no mask of this region in this case";
  box.addEventListener("change", () => (box.checked ? showRegion(r.region_id) : hideRegion(r.region_id)));
  $("regions").append(el("label", { "data-region": r.name }, box,
    el("span", { class: "swatch", style: `background:${rgb(r)}` }),
    el("a", { href: "#", text: r.name, onclick: (e) => { e.preventDefault(); showPanel(r.region_id); } })));
}
try { await startViewer(); } catch (e) {
  $("viewer-box").hidden = true;
  $("viewer-message").textContent = e.message;
  state.error = e.message;
}
state.ready = true;
document.body.dataset.ready = "true";
