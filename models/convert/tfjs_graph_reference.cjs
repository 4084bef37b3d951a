// Runs a TF.js graph model with TF.js itself (the pure-JavaScript CPU backend) on raw float32
// inputs, so the ONNX conversion (models/convert/tfjs_graph.py) can be checked against the
// original:
//
//   node models/convert/tfjs_graph_reference.cjs TF_JS MODEL_JSON OUTPUT_NODE IN.f32 N OUT.f32
//
// TF_JS: a UMD bundle of @tensorflow/tfjs (package/dist/tf.es2017.js of the npm tarball; it
// bundles core, converter and the CPU backend, so nothing else is needed). MODEL_JSON: the
// graph model; its weight shards are read from the same folder. IN.f32: N inputs in the graph's
// own layout and range (NHWC float32, the placeholder's shape). OUT.f32: N rows of OUTPUT_NODE.
'use strict';
const fs = require('fs');
const path = require('path');

async function main() {
  const [tfPath, modelPath, outputNode, inFile, nStr, outFile] = process.argv.slice(2);
  if (!outFile) {
    console.error('usage: node tfjs_graph_reference.cjs TF_JS MODEL_JSON OUTPUT_NODE IN.f32 N OUT.f32');
    process.exit(2);
  }
  const n = Number(nStr);
  const tf = require(path.resolve(tfPath));
  await tf.setBackend('cpu');
  await tf.ready();
  const json = JSON.parse(fs.readFileSync(modelPath, 'utf8'));
  const dir = path.dirname(modelPath);
  const specs = [];
  const bufs = [];
  for (const group of json.weightsManifest) {
    specs.push(...group.weights);
    for (const p of group.paths) bufs.push(fs.readFileSync(path.join(dir, p)));
  }
  const all = Buffer.concat(bufs);
  const model = await tf.loadGraphModel(tf.io.fromMemory({
    modelTopology: json.modelTopology, weightSpecs: specs,
    weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.length),
  }));
  const shape = model.inputs[0].shape.slice(1);
  const per = shape.reduce((a, b) => a * b, 1);
  const raw = fs.readFileSync(inFile);
  const pixels = new Float32Array(raw.buffer, raw.byteOffset, raw.length / 4);
  if (!(n > 0) || pixels.length !== n * per) {
    console.error(`${inFile}: ${pixels.length} floats, want ${n} x ${shape.join('x')}`);
    process.exit(1);
  }
  const rows = [];
  for (let i = 0; i < n; i++) {
    const x = tf.tensor(pixels.subarray(i * per, (i + 1) * per), [1, ...shape], 'float32');
    const y = model.execute(x, outputNode);
    rows.push(await y.data());
    x.dispose();
    y.dispose();
  }
  const width = rows[0].length;
  const out = new Float32Array(n * width);
  rows.forEach((r, i) => out.set(r, i * width));
  fs.writeFileSync(outFile, Buffer.from(out.buffer));
  console.log(JSON.stringify({ tfjs: tf.version.tfjs, backend: tf.getBackend(), rows: n, width }));
}

main().catch((e) => { console.error(e.stack || String(e)); process.exit(1); });
