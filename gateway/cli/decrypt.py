"""``edgeledger decrypt`` (the data owner: verify a bundle as ``verify`` does, then decrypt and
print its encrypted readings) and ``edgeledger content-keygen`` (make a content key file).

A reading a device encrypted (``agent/content_key.py``) reaches the gateway and the proof
bundle as a COSE_Encrypt0 inside the signed payload: the gateway, the chain and any verifier
prove it without seeing the values. Only a holder of the content key reads them, and only
from a bundle that verifies: the signature, the Merkle path and, with ``--rpc``, the anchor
and the key are checked first, with the same arguments and exit codes as ``verify``. A wrong
key or an altered ciphertext fails CCM's tag check: exit code 1, nothing printed of the
plaintext.
"""
import argparse

from edgeledger.gateway.cli.proof import (
    VERIFY_OK,
    VERIFY_REFUSED,
    VERIFY_USAGE,
    add_verify_args,
    print_report,
    refuse,
    verified_report,
)


def _decrypt(args: argparse.Namespace) -> int:
    import json

    from edgeledger.agent.content_key import ContentKeyError, load_content_key
    from edgeledger.agent.crypto.errors import CcmAuthError
    from edgeledger.gateway.proofs.verifier import report_values
    from edgeledger.protocols.bundle import Bundle
    from edgeledger.protocols.cbor.decoder import decode as cbor_decode
    from edgeledger.protocols.cose import verify as cose_verify
    from edgeledger.protocols.key_file import KeyFileError
    from edgeledger.protocols.reading import validate as reading_validate

    try:
        key = load_content_key(args.key_file)
    except (OSError, KeyFileError) as e:
        return refuse(args, VERIFY_USAGE, "usage", "content key %s: %s" % (args.key_file, e))
    code, report = verified_report(args)
    if report is None:
        return code
    with open(args.bundle, "rb") as f:  # verified_report read and checked these bytes
        msg = cose_verify.parse_canonical(Bundle.decode(f.read()).message)
    body = reading_validate.decode_payload(msg.payload)
    if body.enc is None:
        return refuse(args, VERIFY_USAGE, "decrypt", "%s seq %d is not encrypted: `edgeledger verify` shows it"
                      % (body.device, body.seq))
    try:
        plain = key.open(cose_verify.parse_encrypt0(body.enc))
    except ContentKeyError as e:
        return refuse(args, VERIFY_REFUSED, "decrypt", "not for this key: %s" % e)
    except CcmAuthError:
        return refuse(args, VERIFY_REFUSED, "decrypt", "the CCM tag does not verify under key %s (%s): a wrong "
                      "key, or the ciphertext was altered" % (key.kid.hex(), key.alg_name))
    try:
        body.pack = reading_validate.check_pack(cbor_decode(plain))
        t_first, t_last = reading_validate.time_range(body.pack)
    except ValueError as e:  # the tag verified: the device encrypted something that is not a pack
        return refuse(args, VERIFY_REFUSED, "decrypt", "the decrypted content is not a SenML pack: %s" % e)
    report.update(encrypted=False, values=report_values(body), t_first=t_first, t_last=t_last,
                  decrypted={"kid": key.kid.hex(), "alg": key.alg_name})
    if args.json:
        print(json.dumps(dict(report, bundle=args.bundle), sort_keys=True))
    else:
        print_report(args.bundle, report)
        print("  decrypted with content key %s (%s)" % (key.kid.hex(), key.alg_name))
    return VERIFY_OK


def _keygen(args: argparse.Namespace) -> int:
    from edgeledger.agent.content_key import content_key_file, parse_content_key
    from edgeledger.agent.crypto import random_bytes
    from edgeledger.gateway.enrol.keys import create_secret_file

    text = content_key_file(args.alg, random_bytes(16))
    create_secret_file(args.out, text)
    print("wrote %s: %s content key, kid %s" % (args.out, args.alg, parse_content_key(text).kid.hex()))
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``decrypt`` and ``content-keygen``."""
    from edgeledger.protocols.cose.encrypt import ENC_ALG_BY_NAME

    de = sub.add_parser("decrypt", help="verify a proof bundle as `verify` does, then decrypt its readings",
                        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_verify_args(de)
    de.add_argument("--key-file", required=True, help="the data owner's content key file (content-keygen)")
    de.set_defaults(func=_decrypt)
    kg = sub.add_parser("content-keygen", help="make a content key file for encrypted readings (mode 0600)")
    kg.add_argument("--alg", choices=sorted(str(name) for name in ENC_ALG_BY_NAME), default="AES-CCM-16-64-128")
    kg.add_argument("--out", required=True)
    kg.set_defaults(func=_keygen)
