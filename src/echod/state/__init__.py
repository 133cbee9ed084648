"""State: what the scenarios of ``/api/inspect`` remember between requests.

Attempts counted and logged under a key, and token buckets, shared by every process of
an instance (:mod:`echod.state.local`, in the runtime directory) or by every replica
(:mod:`echod.state.remote`, in Redis or Valkey). :mod:`echod.state.model` says what a
request asks of the state and what it answers, the same for both.
"""
