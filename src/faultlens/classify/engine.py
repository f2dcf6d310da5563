"""The classifier: layered rule packs compiled into one prefiltered, cached decision function."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from faultlens.classify.cache_stats import UNATTRIBUTED, CacheCounter
from faultlens.classify.compile import CompiledRule, compile_rule
from faultlens.classify.masks import MESSAGE_MASK_RE, masked_guard, stable_under_message_mask
from faultlens.classify.prefilter import SubstringIndex
from faultlens.classify.rules import Rule, RulePack, frame_evidence_of
from faultlens.classify.text import Literal, decision_text, token_in
from faultlens.errors import RulePackError
from faultlens.model import Category, Classification, FailureClass, Status

__all__ = ["SUCCESS_RULE", "UNCLASSIFIED_RULE", "Classifier"]

SUCCESS_RULE = "success"
UNCLASSIFIED_RULE = "unclassified"

_STATUS_VALUES = frozenset(s.value for s in Status)
_SUCCESS: str = Status.SUCCESS.value  # a plain str compares faster than the enum member
_DEFAULT_CACHE_SIZE = 65536
# Longer decision texts are not cached by their mask (the cache holds up to 2 x 16384 of them).
_MAX_CACHED_TEXT = 1024
# What is left of a decision once its key settled everything else: rules in order, each with the
# checks to run on the text: (_SUB, a substring), (_ANY_SUB, substrings of which one must occur),
# (_REGEX, a pattern), (_ANY_REGEX, patterns of which one must match) or (_ANY_LIT, literals as
# (core, left, right) of which one must occur: token literals, found with their boundaries).
_Checks = tuple[tuple[int, Any], ...]
_SUB, _ANY_SUB, _REGEX, _ANY_REGEX, _ANY_LIT = 0, 1, 2, 3, 4
_Program = tuple[tuple[CompiledRule, _Checks], ...]
_MISSING: Any = object()


class Classifier:
    """Classifies events against packs tried in order; the first matching rule decides.

    Built-in decisions, outside any pack: a successful event is always ``none``; a failed event no
    rule matches is ``unclassified``. Those carry the whole stack's `version` as rule_version,
    since "no rule matched" is a statement about every pack.

    Within a pack, rules are tried by evidence tier (product, transport, message: RulePack.tried_in_order);
    packs keep their layering order, so a tenant's rule still comes before every shipped one.
    """

    def __init__(self, packs: Sequence[RulePack], *, cache_size: int = _DEFAULT_CACHE_SIZE) -> None:
        self._packs: tuple[RulePack, ...] = tuple(packs)
        ids = [p.id for p in self._packs]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise RulePackError(f"rule pack ids must be unique in a classifier: {dupes}", details={"ids": ids})
        self._version = "+".join(ids) if ids else "builtin"
        self._cache_size = max(1, cache_size // 2)
        self._cache: dict[tuple[Any, ...], Classification] = {}
        self._old: dict[tuple[Any, ...], Classification] = {}

        rules: list[CompiledRule] = []
        for pack in self._packs:
            token = pack.literal_match == "token"
            for rule in pack.tried_in_order():
                rules.append(compile_rule(len(rules), pack.id, rule, token=token))
        self._rules = rules
        self._frames = frame_evidence_of(self._packs)  # frames kept in the decision text

        self._success = self._no_rule(SUCCESS_RULE, "none", FailureClass.NONE, Category.NONE, actionable=False)
        self._unclassified = self._no_rule(
            UNCLASSIFIED_RULE, "unclassified", FailureClass.SERVICE_FAILURE, Category.UNKNOWN, actionable=True
        )
        self._build_prefilter()

    def _no_rule(
        self, rule_name: str, kind: str, failure_class: FailureClass, category: Category, *, actionable: bool
    ) -> Classification:
        """A decision no rule of the packs made (a success, an unclassified failure): never retryable."""
        return Classification(
            failure_kind=kind,
            failure_class=failure_class,
            is_actionable=actionable,
            category=category.value,
            retryable=False,
            rule_name=rule_name,
            rule_version=self._version,
        )

    def _build_prefilter(self) -> None:
        msg_of: dict[str, set[int]] = {}
        txt_of: dict[str, set[int]] = {}
        for cr in self._rules:
            for s in cr.msg_subs or ():
                msg_of.setdefault(s, set()).add(cr.index)
            for s in cr.txt_subs or ():
                txt_of.setdefault(s, set()).add(cr.index)
        self._hit_table = {
            w: (frozenset(msg_of.get(w, ())), frozenset(txt_of.get(w, ()))) for w in set(msg_of) | set(txt_of)
        }
        samples = [
            decision_text(ex.error_message, self._frames)
            for cr in self._rules
            for ex in cr.rule.examples
            if ex.error_message
        ]
        literals: dict[str, Literal] = {}
        for cr in self._rules:
            literals.update(cr.literals)
        self._literals = literals
        self._index = SubstringIndex(self._hit_table, samples, literals)

        # Rules without substrings are indexed by their most selective condition, so an event
        # only ever checks the few that could apply to it.
        by_http: dict[int, list[int]] = {}
        by_code: dict[str, list[int]] = {}
        by_status: dict[str, list[int]] = {}
        by_source: dict[str, list[int]] = {}
        by_op: dict[str, list[int]] = {}
        always: list[int] = []
        for cr in self._rules:
            if cr.anchored:
                continue
            if cr.http is not None:
                for lo, hi in cr.http:
                    for code in range(lo, hi + 1):
                        by_http.setdefault(code, []).append(cr.index)
                continue
            # The first condition the rule has, in this order, is the one it is indexed by.
            for values, table in (
                (cr.codes, by_code),
                (cr.statuses, by_status),
                (cr.sources, by_source),
                (cr.operations, by_op),
            ):
                if values is not None:
                    for value in values:
                        table.setdefault(value, []).append(cr.index)
                    break
            else:
                always.append(cr.index)
        self._by_http = {k: frozenset(v) for k, v in by_http.items()}
        self._by_code = {k: frozenset(v) for k, v in by_code.items()}
        self._by_status = {k: frozenset(v) for k, v in by_status.items()}
        self._by_source = {k: frozenset(v) for k, v in by_source.items()}
        self._by_op = {k: frozenset(v) for k, v in by_op.items()}
        self._always = frozenset(always)
        self._sources = frozenset(s for cr in self._rules for s in cr.sources or ())
        self._operations = frozenset(s for cr in self._rules for s in cr.operations or ())
        # A token literal's boundaries hold in a text exactly when they hold in its mask (text.char_kind),
        # so its core decides whether the mask can hide it.
        core = {p: literals[p].core if p in literals else p for p in self._hit_table}
        self._stable = frozenset(p for p in self._hit_table if stable_under_message_mask(core[p]))
        self._guards = {p: masked_guard(core[p]) for p in self._hit_table if p not in self._stable}
        # Regex needs the mask cannot hide: the masked text settles them once per decision program (see _program).
        self._stable_needs = frozenset(
            needs
            for cr in self._rules
            for needs in (cr.msg_regex_needs, cr.txt_regex_needs)
            if needs is not None and all(map(stable_under_message_mask, needs))
        )
        self._program_cache_size = 16384
        self._programs: dict[tuple[Any, ...], CompiledRule | _Program | None] = {}
        self._old_programs: dict[tuple[Any, ...], CompiledRule | _Program | None] = {}

    @property
    def version(self) -> str:
        return self._version

    @property
    def packs(self) -> tuple[RulePack, ...]:
        return self._packs

    def classify(
        self,
        *,
        status: str,
        http_status: int | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        source: str | None = None,
        operation: str | None = None,
        counter: CacheCounter | None = None,
    ) -> Classification:
        """The decision for one event; `counter` counts the lookup and whether a cache answered it (the tenant's, in
        ingest and backfill: cache_stats.counter)."""
        key = (status, http_status, error_code, error_message, source, operation)
        counts = UNATTRIBUTED if counter is None else counter
        counts.requests += 1
        hit = self._cache.get(key)
        if hit is not None:
            counts.hits += 1
            return hit
        hit = self._old.get(key)
        if hit is not None:
            counts.hits += 1
        else:
            st = str(status).strip().lower()
            if st == _SUCCESS:
                hit = self._success
                counts.hits += 1  # decided without a rule
            else:
                cr = self._decide(st, http_status, error_code, error_message, source, operation, counted=counts)
                hit = self._unclassified if cr is None else cr.result
        # Two generations approximate LRU without per-hit bookkeeping: entries used since the
        # last swap survive it, the rest are dropped with the old generation.
        if len(self._cache) >= self._cache_size:
            self._old = self._cache
            self._cache = {}
        self._cache[key] = hit
        return hit

    def cache_clear(self) -> None:
        self._cache = {}
        self._old = {}
        self._programs = {}
        self._old_programs = {}

    def decide_rule(self, **event: Any) -> tuple[str, str] | None:
        """(pack id, rule name) of the rule that decides an event, or None for a built-in decision."""
        cr = self._decide_event(event)
        return None if cr is None else (cr.pack_id, cr.rule.name)

    def deciding_rule(self, **event: Any) -> Rule | None:
        """The rule (the pack's own object) that decides an event, or None for a built-in decision."""
        cr = self._decide_event(event)
        return None if cr is None else cr.rule

    def _decide_event(self, event: dict[str, Any]) -> CompiledRule | None:
        st = str(event.get("status", Status.FAILURE)).strip().lower()
        if st == Status.SUCCESS:
            return None
        return self._decide(
            st,
            event.get("http_status"),
            event.get("error_code"),
            event.get("error_message"),
            event.get("source"),
            event.get("operation"),
        )

    def _decide(
        self,
        st: str,
        http_status: int | None,
        error_code: str | None,
        error_message: str | None,
        source: str | None,
        operation: str | None,
        *,
        counted: CacheCounter | None = None,
    ) -> CompiledRule | None:
        """The rule deciding an event (None: no rule). `counted`: the counter of a classify() lookup, to which a hit
        of the decision-program cache counts as a cache hit."""
        if st not in _STATUS_VALUES:
            st = Status.FAILURE.value  # an unknown status is still a failed event
        if http_status is not None and (type(http_status) is not int):
            # Callers outside the typed API send "503" or 503.0; anything else is no evidence.
            try:
                http_status = int(http_status)
            except (TypeError, ValueError):
                http_status = None
        text = decision_text(error_message, self._frames)
        code = error_code.strip().lower() if error_code else ""
        # A source or operation no rule names is as good as none.
        src = source.strip().lower() if source and self._sources else ""
        if src and src not in self._sources:
            src = ""
        op = operation.strip().lower() if operation and self._operations else ""
        if op and op not in self._operations:
            op = ""
        if len(text) > _MAX_CACHED_TEXT:
            # Rare, and too big to keep by the thousand: the chunk index bounds their cost instead.
            return self._decide_by_index(st, http_status, code, src, op, text)
        # Everything a decision depends on, with the message masked (see _program for why the
        # mask cannot change a decision).
        masked = MESSAGE_MASK_RE.sub("0", text)
        key = (st, http_status, code, src, op, masked)
        prog: CompiledRule | _Program | None = self._programs.get(key, _MISSING)
        if prog is _MISSING:
            prog = self._old_programs.get(key, _MISSING)
            if prog is _MISSING:
                prog = self._program(st, http_status, code, src, op, text, masked)
            elif counted is not None:
                counted.hits += 1
            if len(self._programs) >= self._program_cache_size:
                self._old_programs = self._programs
                self._programs = {}
            self._programs[key] = prog
        elif counted is not None:  # the same message with other numbers and ids: its decision program is known
            counted.hits += 1
        if not isinstance(prog, tuple):
            return prog
        # Rules whose match hangs on what the mask hides, in order, each with its checks left.
        for cr, checks in prog:
            for kind, item in checks:
                if kind == _SUB:
                    if item not in text:
                        break
                elif kind == _ANY_SUB:
                    if not any(map(text.__contains__, item)):  # C-level: no generator frame per needle
                        break
                elif kind == _REGEX:
                    if item.search(text) is None:
                        break
                elif kind == _ANY_REGEX:
                    if not any(r.search(text) for r in item):
                        break
                elif not any(core in text and token_in(core, left, right, text) for core, left, right in item):
                    break
            else:
                return cr
        return None

    def _decide_by_index(
        self, st: str, http_status: int | None, code: str, src: str, op: str, msg: str
    ) -> CompiledRule | None:
        """_decide for one text, uncached: the substring index finds the candidate rules."""
        if msg:
            msg_hits, txt_hits = self._index.find(msg)
        else:
            msg_hits, txt_hits = set(), set()
        if code:
            txt_hits |= self._index.find(code)[1]

        cands = msg_hits | txt_hits | self._always
        cands |= self._field_candidates(st, http_status, code, src, op)

        rules = self._rules
        if not cands:
            return None
        first = rules[min(cands)]
        if first.simple:
            return first
        for i in sorted(cands):
            cr = rules[i]
            if cr.msg_subs is not None and i not in msg_hits:
                continue
            if cr.txt_subs is not None and i not in txt_hits:
                continue
            if not _fields_match(cr, st, http_status, code, src, op):
                continue
            if cr.msg_regex is not None and not any(r.search(msg) for r in cr.msg_regex):
                continue
            if cr.txt_regex is not None and not any(r.search(msg) or (code and r.search(code)) for r in cr.txt_regex):
                continue
            return cr
        return None

    def _field_candidates(self, st: str, http_status: int | None, code: str, src: str, op: str) -> set[int]:
        """Rules that a status, HTTP status, error code, source or operation condition names."""
        out = set(self._by_status.get(st, frozenset()))
        if http_status is not None:
            out |= self._by_http.get(http_status, frozenset())
        if code:
            out |= self._by_code.get(code, frozenset())
        if src:
            out |= self._by_source.get(src, frozenset())
        if op:
            out |= self._by_op.get(op, frozenset())
        return out

    def _program(
        self, st: str, http_status: int | None, code: str, src: str, op: str, text: str, masked: str
    ) -> CompiledRule | _Program | None:
        """The decision for every text with the same mask as `text`, and these other fields.

        A substring stable under the mask occurs in `text` exactly when it occurs in the masked
        text, so it is settled here; every other condition but regexes on the text reads the key.
        The result is the deciding rule, or None, when those settle it; otherwise the rules in
        order up to the first settled one, each with the checks left to run on the actual text:
        the mask-unstable substrings that may occur (their core occurs and their guard is in the
        masked text) and the text regexes, behind the literals one of which they need.
        """
        index = self._index
        table = self._hit_table
        maybe = index.candidates(text) if text else set()
        present = {p for p in maybe if p in self._stable and index.occurs(p, text)}
        # Substrings the mask may hide: their guard must be in the masked text, they in the text.
        guards = self._guards
        shaky = {p for p in maybe if p not in self._stable and ((g := guards[p]) is None or g in masked)}
        code_hits: set[int] = index.find(code)[1] if code else set()
        cands = code_hits | self._always
        for p in maybe:
            cands |= table[p][0]
            cands |= table[p][1]
        cands |= self._field_candidates(st, http_status, code, src, op)

        steps: list[tuple[CompiledRule, _Checks]] = []
        for i in sorted(cands):
            cr = self._rules[i]
            if not _fields_match(cr, st, http_status, code, src, op):
                continue
            checks: list[tuple[int, Any]] = []
            if cr.msg_subs is not None and present.isdisjoint(cr.msg_subs):
                left = tuple(p for p in cr.msg_subs if p in shaky)
                if not left:
                    continue
                checks.append(self._literal_check(left))
            if cr.txt_subs is not None and i not in code_hits and present.isdisjoint(cr.txt_subs):
                left = tuple(p for p in cr.txt_subs if p in shaky)
                if not left:
                    continue
                checks.append(self._literal_check(left))
            impossible = False
            for regexes, needs in ((cr.msg_regex, cr.msg_regex_needs), (cr.txt_regex, cr.txt_regex_needs)):
                if regexes is None or (regexes is cr.txt_regex and code and any(r.search(code) for r in regexes)):
                    continue
                if needs is not None:
                    if needs in self._stable_needs:
                        # The mask keeps these strings: the masked text settles them for every text of this program.
                        if not any(map(masked.__contains__, needs)):
                            impossible = True
                            break
                    else:
                        checks.append((_SUB, needs[0]) if len(needs) == 1 else (_ANY_SUB, needs))
                checks.append((_REGEX, regexes[0]) if len(regexes) == 1 else (_ANY_REGEX, regexes))
            if impossible:
                continue
            if not checks:
                if not steps:
                    return cr
                steps.append((cr, ()))
                break
            steps.append((cr, tuple(checks)))
        return tuple(steps) if steps else None

    def _literal_check(self, keys: tuple[str, ...]) -> tuple[int, Any]:
        """The check that one of these literals occurs in the text: plain `in` unless one is a token."""
        lits = self._literals
        if any(k in lits and lits[k].key != lits[k].core for k in keys):
            # (core, left, right): `core in text` first, at C speed; boundaries only where it occurs.
            spec = [lits.get(k, Literal(k, k, "", "")) for k in keys]
            return (_ANY_LIT, tuple((lit.core, lit.left, lit.right) for lit in spec))
        return (_SUB, keys[0]) if len(keys) == 1 else (_ANY_SUB, keys)


def _fields_match(cr: CompiledRule, st: str, http_status: int | None, code: str, src: str, op: str) -> bool:
    """Whether the rule's status, HTTP status, error code, source and operation conditions all hold."""
    return (
        (cr.statuses is None or st in cr.statuses)
        and (cr.http is None or (http_status is not None and any(lo <= http_status <= hi for lo, hi in cr.http)))
        and (not cr.without_http or http_status is None)
        and (cr.codes is None or code in cr.codes)
        and (cr.sources is None or src in cr.sources)
        and (cr.operations is None or op in cr.operations)
    )
