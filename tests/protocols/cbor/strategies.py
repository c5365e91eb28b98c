"""Hypothesis strategies over the codec's data model."""
from hypothesis import strategies as st

from edgeledger.protocols.cbor.decoder import Tag

# Tag numbers that cbor2 leaves as plain CBORTag on decode (no semantic
# decoder), over every head size; bignum tags 2/3 have their own tests.
TAG_NUMBERS = st.sampled_from([6, 7, 18, 23, 24, 32, 55, 1000, 40000, 2**32 + 5, 2**64 - 1])

ints = st.one_of(
    st.integers(-30, 30),
    st.integers(-(2**64), 2**64 - 1),
    st.sampled_from([23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1,
                     -24, -25, -256, -257, -65536, -65537, -(2**32), -(2**32) - 1, -(2**64)]),
)
floats = st.one_of(
    st.floats(width=16),
    st.floats(width=32),
    st.floats(),
    st.sampled_from([0.0, -0.0, float("inf"), float("-inf"), float("nan"), 65504.0, 65520.0,
                     5.960464477539063e-08, 2.980232238769531e-08, 1e-45, 1.401298464324817e-45,
                     3.4028234663852886e38, 3.4028235677973366e38, 2.2250738585072014e-308,
                     5e-324, 1.0000000000000002, 1.5, 100000.0, 1.1]),
)
scalars = st.one_of(
    st.none(), st.booleans(), ints, floats,
    st.binary(max_size=40), st.text(max_size=20),
)
# NaN keys are excluded: two NaNs are distinct dict keys but encode the same.
keys = st.one_of(
    st.integers(-30, 30), ints, st.text(max_size=6), st.binary(max_size=6),
    st.booleans(), st.none(), st.floats(allow_nan=False, width=32),
    st.builds(Tag, TAG_NUMBERS, st.integers(0, 1000)),
)
# Keys drawn mostly from one family, so both key orders often agree and the
# byte-for-byte comparison with cbor2 runs on maps too.
small_keys = st.one_of(st.integers(-24, 23), st.text(max_size=4))


def values(key_strategy=keys, max_leaves=25):
    return st.recursive(
        scalars,
        lambda kids: st.one_of(
            st.lists(kids, max_size=6),
            st.tuples(kids, kids),
            st.dictionaries(key_strategy, kids, max_size=6),
            st.builds(Tag, TAG_NUMBERS, kids),
        ),
        max_leaves=max_leaves,
    )
