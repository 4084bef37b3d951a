// Runs face-api's OWN networks (the npm package's JavaScript on the TF.js CPU backend) on raw
// float32 images, so the Python ports can be checked against the code they port.
//
//   node models/faceapi_reference.mjs PACKAGE_DIR recognition|landmarks IN.f32 N OUT.f32
//
// IN.f32: N images, NHWC float32 RGB with values 0..255, 150x150 (recognition) or 112x112
// (landmarks), already at the network's size (so face-api does no padding or resizing).
// OUT.f32: N x 128 descriptors (computeFaceDescriptor) or N x 136 relative landmark
// coordinates, x0 y0 x1 y1 ... (FaceLandmark68Net.forward on a square input equals the raw
// network output). Only the browser ESM bundle (dist/face-api.esm.js, TF.js bundled) is used;
// it is loaded with Node's version hidden so that it does not reach for the tfjs-node addon.
import fs from 'fs';
import path from 'path';
import { pathToFileURL } from 'url';

const [pkgDir, net, inFile, nStr, outFile] = process.argv.slice(2);
if (!outFile) {
  console.error('usage: node faceapi_reference.mjs PACKAGE_DIR recognition|landmarks IN.f32 N OUT.f32');
  process.exit(2);
}
const n = Number(nStr);
const size = { recognition: 150, landmarks: 112 }[net];
const model = { recognition: 'face_recognition_model', landmarks: 'face_landmark_68_model' }[net];
if (!size || !(n > 0)) {
  console.error(`bad net ${net} or count ${nStr}`);
  process.exit(2);
}

const realVersions = process.versions;
Object.defineProperty(process, 'versions', { value: { ...realVersions, node: undefined }, configurable: true });
const faceapi = await import(pathToFileURL(path.join(pkgDir, 'dist', 'face-api.esm.js')).href);
Object.defineProperty(process, 'versions', { value: realVersions, configurable: true });

const { tf } = faceapi;
const encoder = new TextEncoder();
tf.env().setPlatform('faceapi-reference', {
  fetch: (...a) => fetch(...a),
  now: () => performance.now(),
  encode: (t) => encoder.encode(t),
  decode: (b, e) => new TextDecoder(e).decode(b),
  isTypedArray: (a) => ArrayBuffer.isView(a) && !(a instanceof DataView),
  setTimeoutCustom: setTimeout,
});
class NoDom {}
faceapi.env.setEnv({
  Canvas: NoDom, CanvasRenderingContext2D: NoDom, Image: NoDom, ImageData: NoDom, Video: NoDom,
  createCanvasElement: () => new NoDom(), createImageElement: () => new NoDom(), createVideoElement: () => new NoDom(),
  fetch: (...a) => fetch(...a),
  readFile: async () => { throw new Error('no file system in this environment'); },
});
await tf.setBackend('cpu');
await tf.ready();

const dir = path.join(pkgDir, 'model');
const manifest = JSON.parse(fs.readFileSync(path.join(dir, `${model}-weights_manifest.json`), 'utf8'));
const weightMap = {};
for (const group of manifest) {
  const buf = Buffer.concat(group.paths.map((p) => fs.readFileSync(path.join(dir, p))));
  Object.assign(weightMap, tf.io.decodeWeights(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length), group.weights));
}
const network = net === 'recognition' ? new faceapi.FaceRecognitionNet() : new faceapi.FaceLandmark68Net();
network.loadFromWeightMap(weightMap);

const raw = fs.readFileSync(inFile);
const pixels = new Float32Array(raw.buffer, raw.byteOffset, raw.length / 4);
if (pixels.length !== n * size * size * 3) {
  console.error(`${inFile}: ${pixels.length} floats, want ${n}x${size}x${size}x3`);
  process.exit(1);
}
const width = net === 'recognition' ? 128 : 136;
const out = new Float32Array(n * width);
for (let i = 0; i < n; i++) {
  const img = tf.tensor3d(pixels.subarray(i * size * size * 3, (i + 1) * size * size * 3), [size, size, 3], 'float32');
  let values;
  if (net === 'recognition') {
    values = await network.computeFaceDescriptor(img);
  } else {
    const t = await network.forward(img);
    values = await t.data();
    t.dispose();
  }
  out.set(values, i * width);
  img.dispose();
}
fs.writeFileSync(outFile, Buffer.from(out.buffer));
