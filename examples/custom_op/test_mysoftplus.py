"""Every gradverify property of every op ``mysoftplus.ops`` registers, in one line: one test
per (op, property), e.g. ``test_mysoftplus[MySoftplus-gradient]``."""

import mysoftplus.ops

from gradverify.properties import op_suite

test_mysoftplus = op_suite(mysoftplus.ops)
