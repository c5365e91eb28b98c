// Runs under Node with npm's sm-crypto (an independent JavaScript SM2/SM3/SM4), for
// tests/interop/test_sm_crypto_js.py.
//
// stdin: JSON {"sm3": [hex], "sm4": [{"key": hex, "block": hex}],
//              "verify": [{"public": hex (04 X Y), "message": hex, "signature": hex (r s)}],
//              "sign": [{"private": hex, "public": hex, "message": hex}]}
// stdout: JSON {"sm3": [hex], "sm4": [hex], "verified": [bool], "signed": [hex r s]}
// SM2 here is GB/T 32918.2 with SM3 and Z_A of the default id 1234567812345678
// (hash: true), signatures as r ‖ s hex (der: false).
'use strict';
const { sm2, sm3, sm4 } = require('sm-crypto');

const bytes = (hex) => Array.from(Buffer.from(hex, 'hex'));
let input = '';
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const job = JSON.parse(input);
  const out = {
    sm3: (job.sm3 || []).map((m) => sm3(bytes(m))),
    sm4: (job.sm4 || []).map((c) => sm4.encrypt(bytes(c.block), c.key, { padding: 'none' })),
    verified: (job.verify || []).map((c) => sm2.doVerifySignature(
      bytes(c.message), c.signature, c.public, { hash: true, der: false })),
    signed: (job.sign || []).map((c) => sm2.doSignature(
      bytes(c.message), c.private, { hash: true, der: false, publicKey: c.public })),
  };
  process.stdout.write(JSON.stringify(out));
});
