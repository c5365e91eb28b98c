"""When to say a failure that keeps happening: at once, then less and less often.

A broker or a chain node that is down fails every reconnection attempt. Logging each
attempt floods the console (a line every 200 ms); logging only the first leaves an
operator who looks later with nothing. ``Repeats`` says the first failure of a kind at
once, then the same failure again after FIRST_GAP_S, the gap doubling per line up to
MAX_GAP_S, each line carrying how many repeats went unsaid since the one before. A
failure of another kind (another key) is said at once; ``clear`` ends the outage.

Sans-IO: the caller passes ``now`` (any monotonic clock, seconds) and does the logging.
Runs under MicroPython (the agent) and CPython (the gateway)::

    quiet = Repeats()
    n = quiet.say("refused", now)
    if n is not None:
        log("broker refused the connection%s" % repeated(n))
"""

# The second line of one failure comes this long after the first: long enough that a
# reconnect loop (0.2 s .. 10 s backoff) says a few lines a minute at most, short enough
# that an operator who starts a process by hand sees the failure is still there.
FIRST_GAP_S = 10.0
# Gaps stop doubling here: an outage of a day says its failure about 150 times.
MAX_GAP_S = 600.0


class Repeats:
    """The gate for one failure at a time (the last key seen)."""

    def __init__(self, first_gap_s=FIRST_GAP_S, max_gap_s=MAX_GAP_S):
        self.first_gap_s = first_gap_s
        self.max_gap_s = max_gap_s
        self.key = None  # the failure being repeated, None when none is
        self.unsaid = 0  # repeats since the last line
        self.total = 0  # occurrences of this failure in all
        self._gap = first_gap_s
        self._next = 0.0

    def say(self, key, now):
        """None to stay quiet about this occurrence of failure ``key``; else the number of
        repeats that went unsaid since the last line (0 for a new failure)."""
        if key != self.key:
            self.key, self.unsaid, self.total = key, 0, 1
            self._gap = self.first_gap_s
            self._next = now + self._gap
            return 0
        self.total += 1
        if now < self._next:
            self.unsaid += 1
            return None
        unsaid, self.unsaid = self.unsaid, 0
        self._gap = min(self._gap * 2, self.max_gap_s)
        self._next = now + self._gap
        return unsaid

    def clear(self):
        """The failure is over: returns how often it happened (0 when none was going on)."""
        total = self.total if self.key is not None else 0
        self.key, self.unsaid, self.total = None, 0, 0
        return total


def repeated(unsaid):
    """The tail of a repeated line: "" or " (N more times since the last line)"."""
    return " (%d more times since the last line)" % unsaid if unsaid else ""
