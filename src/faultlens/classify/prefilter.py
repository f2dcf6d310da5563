"""The substring index: which rules' substrings occur in a text, cached per chunk, word and mask."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from faultlens.classify.masks import CHUNK_MASK_RE, HEX_LETTERS, mask_stable, mask_stable_run
from faultlens.classify.text import Literal

__all__ = ["SubstringIndex", "samples_holding"]

# Words as the index sees them: a run of word characters from its first non-digit on. Numbers,
# the commonest unique words, never reach Python; a core starting with a non-digit still lies
# inside the word cut from any run that contains it.
_WORD_RE = re.compile(r"[^\W\d]\w*")
# Maximal runs of word characters: every occurrence of a _WORD_RE run lies inside one.
_SAMPLE_WORD_RE = re.compile(r"\w+")
_CACHE_SIZE = 100_000
_Hits = tuple[frozenset[int], frozenset[int]]
# Per whitespace-separated chunk of text: rules whose substring certainly occurs in it (for
# error_message, for text) and the substrings to confirm with an `in` on the whole text.
_Entry = tuple[frozenset[int], frozenset[int], tuple[str, ...]]
_EQUALS, _ENDS, _STARTS = 0, 1, 2

# Compared by identity: a lookup that found nothing, as opposed to a cached "nothing here" (None).
_NOT_CACHED: _Entry = (frozenset(), frozenset(), ("",))


def samples_holding(runs: set[str], samples: Sequence[str]) -> dict[str, int]:
    """For each run of word characters, how many samples hold it (as `run in sample` counts them).

    A run of word characters can only occur inside one maximal run of them, a word of the sample, so each distinct
    word is cut into its substrings once (up to the longest run's length) and a sample counts the runs its words
    hold: a few slices per word instead of every run searched in every sample (4-5x faster on the shipped packs).
    """
    longest = max(map(len, runs), default=0)
    held_by_word: dict[str, frozenset[str]] = {}
    counts = dict.fromkeys(runs, 0)
    for text in samples:
        held: set[str] = set()
        for word in set(_SAMPLE_WORD_RE.findall(text)):
            found = held_by_word.get(word)
            if found is None:
                n = len(word)
                found = frozenset(
                    piece
                    for i in range(n)
                    for j in range(i + 1, min(n, i + longest) + 1)
                    if (piece := word[i:j]) in counts
                )
                held_by_word[word] = found
            held |= found
        for run in held:
            counts[run] += 1
    return counts


class SubstringIndex:
    """Which rules' substrings occur in a text, in work proportional to its new chunks and words.

    Every substring is filed under one run of word characters it contains (its "core": the run
    least seen in the packs' examples, and one no mask can touch), and that run can only occur
    inside one word of a text. A text is split on whitespace into chunks; a chunk's verdict is
    cached under the chunk and under its mask, and on a miss it is built from its words, whose
    candidate substrings are cached too. A mask-stable substring without whitespace lies inside
    one chunk, so the chunk settles it; the others (with whitespace, or with digits or hex-letter
    edges) are confirmed with `in` on the whole text. Repeated wording therefore costs a few set
    operations, and a new id one small regex substitution. (One regex alternation over all
    substrings walks its branches at every position of every text: about a hundred times slower.)

    The table's keys are literals' keys (text.Literal): a token literal is indexed and split by its
    core string, and wherever a substring test settles an occurrence, a token literal also checks its
    boundaries. A boundary depends only on the kind of the character next to the core, which no mask
    changes next to a mask-stable core (text.char_kind), so every cached verdict holds for tokens too.
    """

    def __init__(
        self, table: dict[str, _Hits], samples: Sequence[str], literals: Mapping[str, Literal] | None = None
    ) -> None:
        self._table = table
        # Keys whose literal is more than a plain substring.
        self._tokens = {k: lit for k, lit in (literals or {}).items() if k != lit.core}
        core = {p: (self._tokens[p].core if p in self._tokens else p) for p in table}
        pats = sorted(table)
        runs_of = {p: [r for r in _WORD_RE.findall(core[p]) if mask_stable_run(r)] for p in pats}
        seen_in = samples_holding({r for rs in runs_of.values() for r in rs}, samples)

        def cost(run: str) -> tuple[float, int, str]:
            # Short runs hide inside countless words.
            weight = {1: 50.0, 2: 8.0, 3: 2.0}.get(len(run), 1.0)
            return ((seen_in[run] + 1) * weight, -len(run), run)

        by_core: dict[str, list[str]] = {}
        unanchored: list[str] = []
        for p in pats:
            if runs_of[p]:
                by_core.setdefault(min(runs_of[p], key=cost), []).append(p)
            else:
                unanchored.append(p)  # no run a mask leaves alone: checked on every text
        self._by_core = {c: tuple(ps) for c, ps in by_core.items()}
        self._unanchored = tuple(unanchored)
        self._single = frozenset(c for c in by_core if len(c) == 1)
        bigrams: dict[str, list[str]] = {}
        for c in by_core:
            if len(c) >= 2:
                bigrams.setdefault(c[:2], []).append(c)
        self._bigrams = {k: tuple(v) for k, v in bigrams.items()}
        # Substrings the whole text must confirm. One with whitespace spans several chunks; the
        # chunk holding its core must equal the whitespace-free piece around the core (or end or
        # start with it, for the first or last piece), which rules most out per chunk. Substrings
        # a mask could change are always deferred, with no piece test (the piece may hold digits).
        self._deferred: dict[str, tuple[tuple[str, int], ...]] = {}
        for c, ps in self._by_core.items():
            for key in ps:
                p = core[key]
                if not mask_stable(p):
                    self._deferred[key] = ()
                    continue
                pieces = p.split()
                if len(pieces) == 1 and p == p.strip():
                    continue
                modes = []
                for i, piece in enumerate(pieces):
                    if c in piece:
                        first = i == 0 and not p[0].isspace()
                        last = i == len(pieces) - 1 and not p[-1].isspace()
                        modes.append((piece, _ENDS if first else _STARTS if last else _EQUALS))
                self._deferred[key] = tuple(modes)
        self._words: dict[str, tuple[str, ...]] = {}
        self._chunks: dict[str, _Entry] = {}
        self._masked: dict[str, _Entry | None] = {}
        self._dead: set[str] = set()

    def occurs(self, key: str, text: str) -> bool:
        """Whether the literal filed under `key` occurs in `text` (a plain substring, or a token)."""
        lit = self._tokens.get(key)
        return key in text if lit is None else lit.found_in(text)

    def candidates(self, text: str) -> set[str]:
        """Every substring that may occur in `text`: those whose core does, and the unanchored ones.

        The cores of a text's substrings are stable under the message mask (a run with no digit
        and not of hex letters only), so this set is the same for every text with the same mask.
        """
        found = set(self._unanchored)
        words = self._words
        for word in set(_WORD_RE.findall(text)):
            pats = words.get(word)
            if pats is None:
                # Hex ids and the like hold no core (cores have a letter beyond a-f): skip them.
                pats = () if set(word) <= HEX_LETTERS.union("0123456789") else self._word(word)
            found.update(pats)
        return found

    def _word(self, word: str) -> tuple[str, ...]:
        """Substrings whose core occurs in `word`."""
        found: set[str] = set()
        bigrams = self._bigrams
        for i in range(len(word) - 1):
            listed = bigrams.get(word[i : i + 2])
            if listed:
                found.update(c for c in listed if word.startswith(c, i))
        if self._single:
            found.update(self._single.intersection(word))
        pats = tuple(p for c in sorted(found) for p in self._by_core[c])
        if len(self._words) >= _CACHE_SIZE:
            self._words.clear()
        self._words[word] = pats
        return pats

    def _verdict(self, chunk: str) -> _Entry | None:
        words = self._words
        candidates: set[str] = set()
        for word in set(_WORD_RE.findall(chunk)):
            pats = words.get(word)
            if pats is None:
                # Hex ids and the like hold no core (cores have a letter beyond a-f): skip them.
                pats = () if set(word) <= HEX_LETTERS.union("0123456789") else self._word(word)
            candidates.update(pats)
        if not candidates:
            return None
        msg_ids: set[int] = set()
        txt_ids: set[int] = set()
        deferred: list[str] = []
        for p in candidates:
            modes = self._deferred.get(p)
            if modes is not None:
                if not modes or any(
                    chunk == piece
                    if mode == _EQUALS
                    else chunk.endswith(piece)
                    if mode == _ENDS
                    else chunk.startswith(piece)
                    for piece, mode in modes
                ):
                    deferred.append(p)
            elif self.occurs(p, chunk):
                msg_ids |= self._table[p][0]
                txt_ids |= self._table[p][1]
        if not (msg_ids or txt_ids or deferred):
            return None
        return frozenset(msg_ids), frozenset(txt_ids), tuple(deferred)

    def _chunk(self, chunk: str) -> _Entry | None:
        masked = CHUNK_MASK_RE.sub("0", chunk)
        entry = self._masked.get(masked, _NOT_CACHED) if masked != chunk else _NOT_CACHED
        if entry is _NOT_CACHED:
            entry = self._verdict(chunk)
            if masked != chunk:
                if len(self._masked) >= _CACHE_SIZE:
                    self._masked.clear()
                self._masked[masked] = entry
        # Cached as itself too: "(110:" or "port=443):" recur verbatim and then skip the mask.
        if entry is None:
            if len(self._dead) >= _CACHE_SIZE:
                self._dead.clear()
            self._dead.add(chunk)
        else:
            if len(self._chunks) >= _CACHE_SIZE:
                self._chunks.clear()
            self._chunks[chunk] = entry
        return entry

    def find(self, text: str) -> tuple[set[int], set[int]]:
        """Rule indexes whose error_message substrings, and whose text substrings, occur in `text`."""
        msg_ids: set[int] = set()
        txt_ids: set[int] = set()
        deferred: set[str] = set()
        chunks = self._chunks
        # Most chunks are known to hold nothing; dropping them is one C-level set difference.
        for chunk in set(text.split()) - self._dead:
            entry = chunks.get(chunk)
            if entry is None:
                entry = self._chunk(chunk)
                if entry is None:
                    continue
            msg_ids |= entry[0]
            txt_ids |= entry[1]
            if entry[2]:
                deferred.update(entry[2])
        if self._unanchored:
            deferred.update(self._unanchored)
        table = self._table
        for p in deferred:
            if self.occurs(p, text):
                msg_ids |= table[p][0]
                txt_ids |= table[p][1]
        return msg_ids, txt_ids
