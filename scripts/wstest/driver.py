# -*- coding: utf-8 -*-
"""wstest, the Autobahn test suite's command, sending HTTP headers on each handshake.

wstest's fuzzing client cannot send credentials. This runs wstest unchanged, except for
its fuzzing client's factory: each time the factory picks the next server of the spec, it
sets the headers listed under that server's "headers" (such as Authorization). It also
writes plan.json into the report folder: the case ids the spec selects, as wstest resolved
them, and wstest's version, so that a case that never finished can be told apart.

It is Python 2.7, as wstest is; scripts/autobahn.py runs it from wstest's virtualenv:

    python driver.py --mode fuzzingclient --spec spec.json
"""

# wstest's reactor must be installed before anything else imports Twisted.
from autobahntestsuite import choosereactor  # noqa: F401

import json
import os

import autobahn
import autobahntestsuite
from autobahntestsuite import fuzzing, wstest
from autobahntestsuite.fuzzing import FuzzingClientFactory


class CredentialedFuzzingClientFactory(FuzzingClientFactory):
    """The fuzzing client's factory, with each server's own handshake headers."""

    def __init__(self, spec, debug=False):
        FuzzingClientFactory.__init__(self, spec, debug)
        plan = {
            "cases": self.specCases,
            "autobahntestsuite": autobahntestsuite.__version__,
            "autobahn": autobahn.__version__,
        }
        if not os.path.isdir(self.outdir):
            os.makedirs(self.outdir)
        with open(os.path.join(self.outdir, "plan.json"), "w") as out:
            json.dump(plan, out)

    def nextServer(self):
        picked = FuzzingClientFactory.nextServer(self)
        if picked:
            # nextServer has just called setSessionParameters, which resets the headers.
            self.headers = dict(self.spec["servers"][self.currServer].get("headers", {}))
        return picked


# fuzzing.startClient, which wstest calls, builds the factory by this module-level name.
fuzzing.FuzzingClientFactory = CredentialedFuzzingClientFactory

if __name__ == "__main__":
    wstest.run()
