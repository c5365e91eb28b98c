// CCM (RFC 3610) written for the test, in JavaScript, over npm sm-crypto's SM4 block cipher:
// an SM4-CCM that shares no code with edgeledger's (tests/protocols/test_encrypted_vectors.py).
//
// stdin: JSON [{"key": hex, "nonce": hex, "aad": hex, "plaintext": hex, "tag_len": int}]
// stdout: JSON [hex ciphertext ‖ tag]
'use strict';
const { sm4 } = require('sm-crypto');

const block = (key, b) => Buffer.from(sm4.encrypt(Array.from(b), key, { padding: 'none', output: 'array' }));

function ccm(keyHex, nonce, aad, pt, M) {
  const L = 15 - nonce.length; // RFC 3610 §2.1: nonce of 15 - L bytes
  const lenField = (n, width) => { const b = Buffer.alloc(width); for (let i = width - 1; i >= 0; i--) { b[i] = n & 0xff; n = Math.floor(n / 256); } return b; };
  // §2.2: B0 = flags ‖ nonce ‖ l(m); flags = Adata·64 + ((M-2)/2)·8 + (L-1)
  const b0 = Buffer.concat([Buffer.from([(aad.length ? 64 : 0) + ((M - 2) / 2) * 8 + (L - 1)]), nonce, lenField(pt.length, L)]);
  let a = Buffer.alloc(0);
  if (aad.length) { // aad length below 2^16 - 2^8: two bytes (§2.2)
    a = Buffer.concat([lenField(aad.length, 2), aad]);
    if (a.length % 16) a = Buffer.concat([a, Buffer.alloc(16 - (a.length % 16))]);
  }
  let m = pt;
  if (m.length % 16) m = Buffer.concat([m, Buffer.alloc(16 - (m.length % 16))]);
  const mac = Buffer.concat([b0, a, m]);
  let x = Buffer.alloc(16);
  for (let i = 0; i < mac.length; i += 16) {
    const y = Buffer.alloc(16);
    for (let j = 0; j < 16; j++) y[j] = x[j] ^ mac[i + j];
    x = block(keyHex, y);
  }
  // §2.3: A_i = flags(L-1) ‖ nonce ‖ counter i
  const ctr = (i) => block(keyHex, Buffer.concat([Buffer.from([L - 1]), nonce, lenField(i, L)]));
  const out = Buffer.alloc(pt.length);
  for (let i = 0; i < pt.length; i += 16) {
    const s = ctr(i / 16 + 1);
    for (let j = 0; j < 16 && i + j < pt.length; j++) out[i + j] = pt[i + j] ^ s[j];
  }
  const s0 = ctr(0);
  const tag = Buffer.alloc(M);
  for (let j = 0; j < M; j++) tag[j] = x[j] ^ s0[j];
  return Buffer.concat([out, tag]).toString('hex');
}

let input = '';
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const jobs = JSON.parse(input);
  const hex = (h) => Buffer.from(h, 'hex');
  process.stdout.write(JSON.stringify(jobs.map((j) => ccm(j.key, hex(j.nonce), hex(j.aad), hex(j.plaintext), j.tag_len))));
});
