// Runs Python code under the MicroPython WebAssembly port (wasm32: 4-byte pointers,
// 31-bit small ints), the 32-bit interpreter the device figures are measured on.
// Driven by gateway/boards/micropython32.py:  node micropython32_run.mjs SPEC.json
//
// SPEC: {"package": dir of @micropython/micropython-webassembly-pyscript,
//        "heapsize": initial GC heap bytes, "files": {wasm path: host path},
//        "cwd": wasm folder to run in, "main": Python source, "max_steps": n}
//
// This port collects garbage only when control is back in JavaScript: inside a call,
// gc.collect() merely schedules a collection (its heap grows instead). So the live heap
// is read here, between calls. If `main` defines step(), it is called until it returns
// "done"; after each call the bytes it left allocated (garbage included) are read, a
// collection runs, and the live heap is read. step() returns a label; per label the
// largest live heap and the largest allocation of one step are kept. Heap figures are
// gc.mem_alloc() bytes: 16-byte GC blocks, as on a 32-bit board.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const spec = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const { loadMicroPython } = await import(pathToFileURL(path.join(spec.package, "micropython.mjs")).href);
const mp = await loadMicroPython({
  heapsize: spec.heapsize || 65536,
  stdout: (line) => process.stdout.write(line + "\n"),
  stderr: (line) => process.stderr.write(line + "\n"),
});

function mkdirs(dir) {
  let cur = "";
  for (const part of dir.split("/").filter((p) => p)) {
    cur += "/" + part;
    try { mp.FS.mkdir(cur); } catch (e) { /* exists */ }
  }
}
for (const [dest, src] of Object.entries(spec.files || {})) {
  mkdirs(path.posix.dirname(dest));
  mp.FS.writeFile(dest, fs.readFileSync(src));
}
mkdirs(spec.cwd || "/work");

const result = { labels: {}, steps: 0 };
try {
  mp.runPython(
    "import gc, os\ngc.disable()\nos.chdir(" + JSON.stringify(spec.cwd || "/work") + ")\n" +
    "def _mpy32_mem():\n    return gc.mem_alloc()\n" +
    "def _mpy32_collect():\n    gc.collect()\n");
  const mem = mp.globals.get("_mpy32_mem");
  const collect = mp.globals.get("_mpy32_collect");
  mp.runPython(spec.main);
  collect();
  result.after_main = mem();
  const step = mp.globals.get("step");
  if (step !== undefined) {
    let live = result.after_main;
    for (;;) {
      const label = step();
      result.steps += 1;
      const allocated = mem() - live;
      collect();
      live = mem();
      if (label === "done") break;
      const key = String(label);
      const row = result.labels[key] || { live: 0, alloc: 0, n: 0 };
      row.live = Math.max(row.live, live);
      row.alloc = Math.max(row.alloc, allocated);
      row.n += 1;
      result.labels[key] = row;
      if (result.steps >= (spec.max_steps || 1000000)) {
        throw new Error("step() did not return \"done\" within " + result.steps + " steps");
      }
    }
  }
} catch (e) {
  process.stderr.write(String(e && e.message ? e.message : e) + "\n");
  process.exit(1);
}
process.stdout.write("MPY32-RESULT " + JSON.stringify(result) + "\n");
