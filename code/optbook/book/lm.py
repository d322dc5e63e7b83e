"""A character-level language model on generated text: the book's transformer workload.

Nothing is downloaded and no published text is used.  :func:`make_corpus` writes
English-like prose from a small probabilistic grammar (its lexicon of a few hundred
words is written out in this file), seeded, so the same call gives the same string
on every machine.  The grammar has structure at several scales, which is what makes
the loss curve of a language model interesting:

* spelling inside a word (``-s``/``-es``/``-ies``, irregular plurals and past tenses,
  ``a`` before a consonant and ``an`` before a vowel);
* agreement between words: a number word or determiner fixes the noun's number
  (``one dog``, ``seven dogs``), the subject fixes the verb's (``the dog runs``,
  ``the dogs run``, ``does not``/``do not``, ``is``/``are``, ``was``/``were``), even
  across a relative clause (``the dogs that the child follows sleep``);
* nested clauses (``Mara thinks that the boxes near the river were heavy``), ``if`` and
  ``when`` clauses, questions, quoted speech, and sums spelled out in words or digits
  (``three and four make seven``, ``17 plus 25 is 42``), whose last word only a model
  that adds can predict;
* sentences (a capital after the full stop) and paragraphs (a newline every few
  sentences).

:func:`char_dataset` turns the text into token ids (train/validation split by
position), :class:`TinyGPT` is a small decoder-only transformer, and
:func:`train_lm` trains it and reports losses in bits per character,

.. math::

   \\text{bpc} = \\frac{1}{N \\ln 2} \\sum_{i=1}^{N} -\\ln p_\\theta(x_i \\mid x_{<i}),

against the unigram entropy :math:`H_1 = -\\sum_c p_c \\log_2 p_c` of the training
characters, the loss of the best model that ignores context.  :func:`matrix_params`
and :func:`other_params` split the parameters the way Muon and Shampoo want them:
the hidden 2-D weight matrices of the attention and MLP blocks on one side; the
embeddings, the output head, the biases and the LayerNorm gains on the other (for
AdamW).

``OPTBOOK_SCALE`` (see :func:`optbook.book.device.scale`) sizes the default run:
:func:`lm_defaults` gives the corpus length, the model and the number of steps for a
scale; scale 1 is the CPU budget (300 steps of 32 x 64 characters at width 64, about
10 s on one core).
"""

from __future__ import annotations

import functools
import math
import random
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .device import get_device
from .device import scale as device_scale

__all__ = [
    "make_corpus", "char_dataset", "CharData", "Vocab", "unigram_bpc",
    "TinyGPT", "matrix_params", "other_params", "lm_defaults", "default_data",
    "train_lm", "evaluate_bpc", "generate", "LEXICON",
]


# --------------------------------------------------------------------------------------
# The grammar's lexicon (written for this book)
# --------------------------------------------------------------------------------------

def _words(text: str) -> list[str]:
    return text.split()


# Animate nouns (they can think, say, see): singular form, regular plural unless listed.
_ANIMATE = _words("""
    dog cat bird horse fox wolf sheep goat mouse rabbit owl crow duck goose frog bear
    lion tiger deer fish child person woman man girl boy baby teacher doctor farmer
    baker painter sailor pilot driver student neighbour stranger king queen soldier
    singer dancer writer guard nurse miner weaver hunter fisher potter cook clerk judge
    monk thief poet uncle aunt cousin friend giant dragon robot
""")
# Inanimate nouns (things); the last group are places, used after prepositions too.
_THINGS = _words("""
    box cup book lamp chair table key coin stone letter map clock bell basket hat coat
    shoe ribbon candle bottle knife spoon plate kettle rope ladder wheel window door
    apple pear cake loaf egg onion leaf branch flower seed feather shell drum flute
    violin picture mirror blanket pillow umbrella envelope pencil ball kite boat cart
    wagon engine radio puzzle jar brush glove scarf
""")
_PLACES = _words("""
    river garden kitchen bridge hill market station library forest village tower field
    harbour cave meadow castle school shop island valley road lake farm mill palace
    chapel cellar attic yard orchard desert
""")
_IRREGULAR_PLURAL = {
    "sheep": "sheep", "mouse": "mice", "goose": "geese", "fish": "fish", "deer": "deer",
    "child": "children", "person": "people", "woman": "women", "man": "men",
    "wolf": "wolves", "knife": "knives", "leaf": "leaves", "loaf": "loaves",
    "thief": "thieves", "scarf": "scarves",
}
_NAMES = _words("""
    Mara Tobin Ilsa Corin Bram Nessa Orrin Petra Quill Rhea Saul Tamsin Ulric Vera
    Wendel Yara Zeno Alma Bastian Cleo Dorian Elin Fenna Gideon Hale Inga Jory Kestrel
    Lark Milo
""")
_ADJECTIVES = _words("""
    red blue green yellow black white grey brown old young new small big tall short
    long heavy light quiet loud happy sad angry tired hungry brave shy clever kind
    strange busy lazy warm cold wet dry bright dark soft hard round sharp broken empty
    full clean dusty golden wooden silver gentle wild careful proud curious sleepy
    ancient tiny huge early
""")
_ADVERBS = _words("""
    quickly slowly quietly loudly happily sadly carefully suddenly often rarely always
    never gently eagerly calmly badly softly early late again twice together alone
    outside inside
""")
_PREPOSITIONS = _words("in near under behind beside above across inside past by")
_WEEKDAYS = _words("Monday Tuesday Wednesday Thursday Friday Saturday Sunday")
_TIMES = ["at night", "at dawn", "at noon", "in the morning", "in the evening",
          "every morning", "every winter", "last summer", "after lunch",
          "before dinner"]

# Verbs by what they take.  Past forms follow the spelling rule unless listed.
_INTRANSITIVE_ANIMATE = _words("""
    sleep run walk laugh cry wait sing dance jump swim rest smile shout listen work play
    hide climb travel wander whistle hurry return arrive leave
""")
_INTRANSITIVE_THING = _words("shine fall break roll float sink rattle glow creak melt")
_TRANSITIVE_ANY = _words("""
    see find follow watch like love hate help hear remember forget visit push pull
    greet call touch chase meet
""")
_TRANSITIVE_THING = _words("""
    carry open close build paint drop lift hold wash cook mend sell buy steal fill
    borrow polish hide keep count
""")
_COGNITION = _words("think say know believe hope notice forget remember dream fear")
_DITRANSITIVE = _words("give show send bring hand offer lend throw sell")
_IRREGULAR_PAST = {
    "sleep": "slept", "run": "ran", "sing": "sang", "swim": "swam", "hide": "hid",
    "leave": "left", "shine": "shone", "fall": "fell", "break": "broke", "sink": "sank",
    "see": "saw", "find": "found", "hear": "heard",
    "forget": "forgot", "meet": "met", "build": "built", "hold": "held", "sell": "sold",
    "buy": "bought", "steal": "stole", "keep": "kept", "think": "thought",
    "say": "said", "know": "knew", "give": "gave", "bring": "brought", "lend": "lent",
    "throw": "threw", "send": "sent", "drop": "dropped",  # the one doubled consonant
}
_SMALL_NUMBERS = _words("""
    zero one two three four five six seven eight nine ten eleven twelve thirteen
    fourteen fifteen sixteen seventeen eighteen nineteen
""")
_TENS = _words("_ _ twenty thirty forty fifty sixty seventy eighty ninety")
_FUNCTION_WORDS = _words("""
    the a an this that these those every each some many few no and but or because if
    when while who which that is are was were be do does did not can will must should
    there plus minus make makes is what where why how said it he she they him her them
    o'clock on at in
""")

LEXICON: dict[str, list[str]] = {
    "animate": _ANIMATE, "things": _THINGS, "places": _PLACES, "names": _NAMES,
    "adjectives": _ADJECTIVES, "adverbs": _ADVERBS, "prepositions": _PREPOSITIONS,
    "weekdays": _WEEKDAYS, "intransitive_animate": _INTRANSITIVE_ANIMATE,
    "intransitive_thing": _INTRANSITIVE_THING, "transitive_any": _TRANSITIVE_ANY,
    "transitive_thing": _TRANSITIVE_THING, "cognition": _COGNITION,
    "ditransitive": _DITRANSITIVE, "numbers": _SMALL_NUMBERS + _TENS[2:],
    "function": _FUNCTION_WORDS,
}
"""The grammar's word lists by category (the tests count and check them)."""


def plural(noun: str) -> str:
    """The plural of a noun of the lexicon (irregular table, then spelling rules)."""
    if noun in _IRREGULAR_PLURAL:
        return _IRREGULAR_PLURAL[noun]
    if noun.endswith(("s", "sh", "ch", "x", "z")):
        return noun + "es"
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def third_person(verb: str) -> str:
    """The present tense after a singular subject: ``runs``, ``watches``, ``cries``."""
    if verb == "have":
        return "has"
    if verb.endswith(("s", "sh", "ch", "x", "z", "o")):
        return verb + "es"
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def past(verb: str) -> str:
    """The past tense (irregular table, then ``-d``/``-ied``/``-ed``)."""
    if verb in _IRREGULAR_PAST:
        return _IRREGULAR_PAST[verb]
    if verb.endswith("e"):
        return verb + "d"
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ied"
    return verb + "ed"


def number_words(n: int) -> str:
    """0 <= n < 100 in words: ``seven``, ``forty two``."""
    if n < 20:
        return _SMALL_NUMBERS[n]
    tens, units = divmod(n, 10)
    return _TENS[tens] + ("" if units == 0 else " " + _SMALL_NUMBERS[units])


class _Grammar:
    """The sentence generator: every choice is drawn from one ``random.Random``."""

    MAX_DEPTH = 3

    def __init__(self, rng: random.Random):
        self.rng = rng

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def pick(self, words: Sequence[str]) -> str:
        return self.rng.choice(words)

    def recurse(self, depth: int, p: float) -> bool:
        """Embedding gets rarer with depth and stops at MAX_DEPTH."""
        return depth < self.MAX_DEPTH and self.chance(p / (1 + depth))

    # -- noun phrases: each returns (text, plural?) ------------------------------------
    def count(self) -> int:
        """How many, for a plural count: mostly small, sometimes up to 99."""
        return self.rng.randint(2, 12) if self.chance(0.8) else self.rng.randint(13, 99)

    def determiner(self, is_plural: bool) -> str:
        if is_plural:
            if self.chance(0.3):
                return number_words(self.count())
            return self.pick(["the", "the", "these", "those", "some", "many", "few",
                              "no"])
        return self.pick(["the", "the", "the", "a", "a", "this", "that", "every",
                          "each", "one", "no"])

    def bare_noun_phrase(self, nouns: Sequence[str], is_plural: bool) -> str:
        det = self.determiner(is_plural)
        n_adjectives = self.rng.choice((0, 0, 0, 1, 1, 2))
        words = [self.pick(_ADJECTIVES) for _ in range(n_adjectives)]
        noun = self.pick(nouns)
        words.append(plural(noun) if is_plural else noun)
        if det == "a" and words[0][0] in "aeiou":
            det = "an"
        return " ".join([det] + words)

    def noun_phrase(self, depth: int, animate: bool, allow_pronoun: bool = True,
                    obj: bool = False):
        """A noun phrase, possibly with a prepositional phrase or a relative clause."""
        if animate and self.chance(0.15):
            return self.pick(_NAMES), False
        if allow_pronoun and self.chance(0.08):
            if animate:
                word, is_plural = self.pick([("she", False), ("he", False),
                                             ("they", True)])
            else:
                word, is_plural = "it", False
            if obj:
                word = {"she": "her", "he": "him", "they": "them"}.get(word, word)
            return word, is_plural
        is_plural = self.chance(0.4)
        text = self.bare_noun_phrase(_ANIMATE if animate else _THINGS, is_plural)
        if self.chance(0.15):
            text += " " + self.prepositional_phrase()
        elif self.recurse(depth, 0.3):
            text += " " + self.relative_clause(depth + 1, animate, is_plural)
        return text, is_plural

    def place(self) -> str:
        return self.bare_noun_phrase(_PLACES, self.chance(0.2))

    def prepositional_phrase(self) -> str:
        return self.pick(_PREPOSITIONS) + " " + self.place()

    def relative_clause(self, depth: int, animate: bool, head_plural: bool) -> str:
        """``who feeds the cats`` (the verb agrees with the head noun) or ``that the
        child feeds`` (it agrees with the clause's own subject)."""
        pronoun = ("who" if animate else "which") if self.chance(0.5) else "that"
        tense = self.tense()
        if animate and self.chance(0.6):
            verb = self.pick(_TRANSITIVE_ANY)
            obj, _ = self.noun_phrase(depth + 1, self.chance(0.5), obj=True)
            return f"{pronoun} {self.inflect(verb, head_plural, tense)} {obj}"
        if not animate and self.chance(0.3):
            verb = self.pick(_INTRANSITIVE_THING)
            return f"{pronoun} {self.inflect(verb, head_plural, tense)}"
        subject, subject_plural = self.noun_phrase(depth + 1, True, allow_pronoun=False)
        verb = self.pick(_TRANSITIVE_ANY if animate else _TRANSITIVE_THING)
        return f"{pronoun} {subject} {self.inflect(verb, subject_plural, tense)}"

    # -- verbs -------------------------------------------------------------------------
    def tense(self) -> str:
        return self.pick(["present", "present", "present", "past", "past", "modal"])

    def inflect(self, verb: str, is_plural: bool, tense: str) -> str:
        if tense == "past":
            return past(verb)
        if tense == "modal":
            return self.pick(["can", "will", "must", "should"]) + " " + verb
        return verb if is_plural else third_person(verb)

    def negated(self, verb: str, is_plural: bool, tense: str) -> str:
        if tense == "past":
            return "did not " + verb
        if tense == "modal":
            return self.pick(["can", "will", "must", "should"]) + " not " + verb
        return ("do not " if is_plural else "does not ") + verb

    def be(self, is_plural: bool, tense: str, negate: bool = False) -> str:
        if tense == "modal":
            modal = self.pick(["can", "will", "must", "should"])
            return modal + (" not be" if negate else " be")
        if tense == "past":
            word = "were" if is_plural else "was"
        else:
            word = "are" if is_plural else "is"
        return word + (" not" if negate else "")

    def verb_phrase(self, depth: int, animate: bool, is_plural: bool) -> str:
        tense = self.tense()
        negate = self.chance(0.12)
        form = self.negated if negate else self.inflect
        if not animate:
            kind = self.pick(["intransitive", "copula", "copula"])
        else:
            kind = self.pick(["intransitive", "transitive", "transitive", "thing",
                              "copula", "cognition", "ditransitive"])
        if kind == "copula":
            be = self.be(is_plural, tense, negate)
            if self.chance(0.35):
                rest = self.prepositional_phrase()
            else:
                rest = self.pick(_ADJECTIVES)
            return f"{be} {rest}"
        if kind == "intransitive":
            verbs = _INTRANSITIVE_ANIMATE if animate else _INTRANSITIVE_THING
            text = form(self.pick(verbs), is_plural, tense)
            if self.chance(0.3):
                text += " " + self.pick(_ADVERBS)
            return text
        if kind == "transitive":
            obj, _ = self.noun_phrase(depth + 1, self.chance(0.5), obj=True)
            return f"{form(self.pick(_TRANSITIVE_ANY), is_plural, tense)} {obj}"
        if kind == "thing":
            obj, _ = self.noun_phrase(depth + 1, False, obj=True)
            return f"{form(self.pick(_TRANSITIVE_THING), is_plural, tense)} {obj}"
        if kind == "ditransitive":
            to, _ = self.noun_phrase(depth + 1, True, obj=True)
            what, _ = self.noun_phrase(depth + 1, False, allow_pronoun=False)
            return f"{form(self.pick(_DITRANSITIVE), is_plural, tense)} {to} {what}"
        # cognition: a that-clause, nested while the depth allows
        verb = form(self.pick(_COGNITION), is_plural, tense)
        if self.recurse(depth, 0.9):
            return f"{verb} that {self.clause(depth + 1)}"
        obj, _ = self.noun_phrase(depth + 1, False, obj=True)
        return f"{verb} {obj}"

    # -- clauses and sentences ---------------------------------------------------------
    def clause(self, depth: int) -> str:
        animate = self.chance(0.65)
        subject, is_plural = self.noun_phrase(depth, animate)
        text = f"{subject} {self.verb_phrase(depth, animate, is_plural)}"
        if self.chance(0.15):
            text += " " + self.time_phrase()
        return text

    def time_phrase(self) -> str:
        kind = self.rng.random()
        if kind < 0.3:
            return f"in {self.rng.randint(1700, 2030)}"
        if kind < 0.5:
            return f"at {self.rng.randint(1, 12)} o'clock"
        if kind < 0.7:
            return "on " + self.pick(_WEEKDAYS)
        return self.pick(_TIMES)

    def arithmetic(self) -> str:
        """A true sum or difference, in words or in digits."""
        a, b = self.rng.randint(0, 49), self.rng.randint(0, 49)
        if self.chance(0.5):
            if self.chance(0.7):
                total = number_words(a + b)
                return f"{number_words(a)} and {number_words(b)} make {total}"
            a, b = max(a, b), min(a, b)
            return f"{number_words(a)} minus {number_words(b)} is {number_words(a - b)}"
        return f"{a} plus {b} is {a + b}"

    def question(self) -> str:
        kind = self.rng.random()
        if kind < 0.4:
            animate = self.chance(0.7)
            subject, is_plural = self.noun_phrase(1, animate)
            verb = self.pick(_INTRANSITIVE_ANIMATE if animate else _INTRANSITIVE_THING)
            aux = self.pick(["did", "do" if is_plural else "does"])
            return f"{aux} {subject} {verb}?"
        if kind < 0.7:
            thing, is_plural = self.noun_phrase(1, False, allow_pronoun=False)
            be = self.be(is_plural, self.pick(["present", "past"]))
            return f"where {be} {thing}?"
        obj, _ = self.noun_phrase(1, self.chance(0.5), obj=True)
        return f"who {past(self.pick(_TRANSITIVE_ANY))} {obj}?"

    def sentence(self) -> str:
        kind = self.rng.random()
        if kind < 0.45:
            text = self.clause(0) + "."
        elif kind < 0.57:
            joiner = self.pick(["if", "when", "while"])
            text = f"{joiner} {self.clause(1)}, {self.clause(1)}."
        elif kind < 0.67:
            joiner = self.pick([", and", ", but", " because", " so"])
            text = f"{self.clause(1)}{joiner} {self.clause(1)}."
        elif kind < 0.75:
            is_plural = self.chance(0.5)
            thing = self.bare_noun_phrase(_THINGS + _ANIMATE, is_plural)
            be = self.be(is_plural, self.pick(["present", "past"]))
            text = f"there {be} {thing} {self.prepositional_phrase()}."
        elif kind < 0.83:
            text = self.arithmetic() + "."
        elif kind < 0.92:
            text = self.question()
        else:
            inner = self.clause(1) + self.pick([".", ".", "?", "!"])
            text = f'{self.pick(_NAMES)} said, "{inner[0].upper()}{inner[1:]}"'
        return text[0].upper() + text[1:]


def make_corpus(n_chars: int = 200_000, seed: int = 0) -> str:
    """``n_chars`` characters of generated English-like text (the same for a seed).

    Sentences are separated by a space and grouped into paragraphs of 3 to 7
    sentences, one per line; the text is cut at exactly ``n_chars``.
    """
    if n_chars < 1:
        raise ValueError(f"Invalid n_chars: {n_chars}")
    grammar = _Grammar(random.Random(seed))
    parts: list[str] = []
    length = 0
    while length < n_chars:
        n_sentences = grammar.rng.randint(3, 7)
        paragraph = " ".join(grammar.sentence() for _ in range(n_sentences))
        parts.append(paragraph + "\n")
        length += len(paragraph) + 1
    return "".join(parts)[:n_chars]


# --------------------------------------------------------------------------------------
# Tokens
# --------------------------------------------------------------------------------------

class Vocab:
    """The characters of a text, sorted; ``encode`` maps a string to a LongTensor of
    ids, ``decode`` maps ids back."""

    def __init__(self, chars: str):
        self.chars = "".join(sorted(set(chars)))
        self._index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def __repr__(self) -> str:
        return f"Vocab({len(self)} characters: {self.chars!r})"

    def encode(self, text: str) -> Tensor:
        return torch.tensor([self._index[c] for c in text], dtype=torch.long)

    def decode(self, ids) -> str:
        return "".join(self.chars[i] for i in torch.as_tensor(ids).tolist())


class CharData(NamedTuple):
    """Token ids of the training and validation text (1-D LongTensors) and the vocab."""

    train: Tensor
    val: Tensor
    vocab: Vocab


def char_dataset(text: str, block_size: int, val_fraction: float = 0.1) -> CharData:
    """Token ids of ``text``: the first ``1 - val_fraction`` for training, the rest
    for validation (split by position, so no sentence is in both halves twice).

    Each half must hold more than ``block_size`` characters (a window and its next
    character); the vocab is every character of the whole text.
    """
    if block_size < 1:
        raise ValueError(f"Invalid block_size: {block_size}")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"Invalid val_fraction: {val_fraction}")
    vocab = Vocab(text)
    ids = vocab.encode(text)
    n_train = int(round(len(ids) * (1.0 - val_fraction)))
    train, val = ids[:n_train], ids[n_train:]
    if min(len(train), len(val)) <= block_size:
        raise ValueError(f"Invalid block_size: {block_size} for a text of {len(text)} "
                         f"characters ({len(train)} train, {len(val)} validation)")
    return CharData(train, val, vocab)


def unigram_bpc(tokens: Tensor, vocab_size: int) -> float:
    """The unigram entropy :math:`H_1 = -\\sum_c p_c \\log_2 p_c` of ``tokens``, in bits
    per character: the loss of the best model that ignores context."""
    p = torch.bincount(tokens.cpu(), minlength=vocab_size).double() / tokens.numel()
    p = p[p > 0]
    return float(-(p * p.log2()).sum())


# --------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------

class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position i sees positions <= i."""

    def __init__(self, d_model: int, n_head: int):
        super().__init__()
        if d_model % n_head:
            raise ValueError(f"Invalid n_head: {n_head} does not divide d_model "
                             f"{d_model}")
        self.n_head = n_head
        self.qkv = nn.Linear(d_model, 3 * d_model)  # queries, keys, values: one matmul
        self.proj = nn.Linear(d_model, d_model)      # heads back to the residual stream

    def forward(self, x: Tensor) -> Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        # (B, T, C) -> (B, heads, T, C / heads)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
                   for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class Block(nn.Module):
    """Pre-LayerNorm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, d_model: int, n_head: int):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, n_head)
        self.ln2 = nn.LayerNorm(d_model)
        self.fc = nn.Linear(d_model, 4 * d_model)
        self.fc_proj = nn.Linear(4 * d_model, d_model)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.fc_proj(F.gelu(self.fc(self.ln2(x))))


class TinyGPT(nn.Module):
    """A decoder-only transformer over characters, written plainly.

    Token and learned position embeddings, ``n_layer`` pre-LayerNorm blocks (causal
    self-attention through ``scaled_dot_product_attention``, a GELU MLP of width
    ``4 * d_model``), a final LayerNorm and an **untied** linear head: the head is
    its own matrix, not the transposed token embedding, so that each 2-D weight has
    one role and :func:`matrix_params` can hand the hidden ones to Muon or Shampoo
    while the embeddings and the head go to AdamW.  No dropout (runs are
    deterministic).  Weight matrices start as N(0, 0.02^2), the two projections back
    into the residual stream as N(0, 0.02^2 / (2 n_layer)), biases at zero, and the
    token and position embeddings as N(0, 0.1^2): at GPT-2's 0.02 the first steps of
    AdamW at lr 3e-3 (no warm-up), each about lr in size, move every embedding row
    the same way faster than the rows tell characters apart, and some seeds then sit
    on the unigram plateau (4.4 bits) for a hundred steps; at 0.1 ten of ten seeds
    leave it within 25 steps.

    ``vocab`` is a :class:`Vocab` or a vocabulary size; ``block`` the longest context.
    """

    def __init__(self, vocab, d_model: int = 64, n_layer: int = 2, n_head: int = 4,
                 block: int = 64):
        super().__init__()
        self.vocab_size = vocab if isinstance(vocab, int) else len(vocab)
        self.block = block
        self.token_embedding = nn.Embedding(self.vocab_size, d_model)
        self.position_embedding = nn.Embedding(block, d_model)
        self.blocks = nn.ModuleList(Block(d_model, n_head) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, self.vocab_size, bias=False)
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif "embedding" in name:
                nn.init.normal_(p, mean=0.0, std=0.1)
            elif p.dim() == 2:
                residual = name.endswith(("attn.proj.weight", "fc_proj.weight"))
                std = 0.02 / math.sqrt(2 * n_layer) if residual else 0.02
                nn.init.normal_(p, mean=0.0, std=std)

    def forward(self, idx: Tensor) -> Tensor:
        """Logits (B, T, vocab) for token ids ``idx`` (B, T) with T <= block."""
        T = idx.shape[1]
        if T > self.block:
            raise ValueError(f"Invalid sequence length: {T} > block {self.block}")
        position = torch.arange(T, device=idx.device)
        x = self.token_embedding(idx) + self.position_embedding(position)
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))


def matrix_params(model: TinyGPT) -> list[nn.Parameter]:
    """The hidden 2-D weight matrices: attention's qkv and output projection and the
    MLP's two layers, in every block (what Muon and Shampoo update)."""
    return [m.weight for block in model.blocks for m in block.modules()
            if isinstance(m, nn.Linear)]


def other_params(model: TinyGPT) -> list[nn.Parameter]:
    """Every parameter that is not in :func:`matrix_params`: token and position
    embeddings, the head, the biases and the LayerNorm gains and shifts (for AdamW),
    in ``model.parameters()`` order."""
    matrices = {id(p) for p in matrix_params(model)}
    return [p for p in model.parameters() if id(p) not in matrices]


# --------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------

def lm_defaults(scale: int | None = None) -> dict[str, int]:
    """The workload's size at an ``OPTBOOK_SCALE`` (default: the device's).

    Scale 1 is the 2-core CPU budget (about 10 s a run): 200k characters, width 64,
    2 layers, 4 heads, context 64, 300 steps of 32 sequences.  Scale s trains s times
    as long on an s times longer text (so the number of passes over the text stays
    the same) with s + 1 layers, and from scale 4 on wider and with larger batches:
    at scale 2 (the book's second check, on the CPU too: about 3 times the cost)
    3 layers for 600 steps; at scale 4 (a GPU's default) width 128, 5 layers, 1200
    steps of 64 sequences.
    """
    s = device_scale(get_device()) if scale is None else int(scale)
    if s < 1:
        raise ValueError(f"Invalid scale: {s}")
    return {
        "n_chars": 200_000 * s,
        "d_model": 64 * (1 + s // 4),
        "n_layer": s + 1,
        "n_head": 4,
        "block": 64,
        "steps": 300 * s,
        "batch_size": 32 * (1 + s // 4),
        "eval_every": 100,
    }


@functools.lru_cache(maxsize=4)
def default_data(n_chars: int = 200_000, block: int = 64) -> CharData:
    """``char_dataset(make_corpus(n_chars, seed=0), block)``, made once per process:
    the text is the same for every run, only the runs' seeds differ."""
    return char_dataset(make_corpus(n_chars, seed=0), block)


@torch.no_grad()
def evaluate_bpc(model: nn.Module, tokens: Tensor, max_windows: int = 512,
                 batch: int = 128) -> Tensor:
    """Mean loss in bits per character over non-overlapping windows of ``tokens``
    (each window predicts its ``block`` next characters); the first
    ``max_windows`` windows, always the same.  Returns a 0-dim tensor on the device
    (no host sync)."""
    block = model.block
    n = min((tokens.numel() - 1) // block, max_windows)
    starts = torch.arange(n, device=tokens.device) * block
    offsets = torch.arange(block, device=tokens.device)
    was_training = model.training
    model.eval()
    total = torch.zeros((), device=tokens.device)
    for i in range(0, n, batch):
        idx = starts[i : i + batch, None] + offsets
        logits = model(tokens[idx])
        total += F.cross_entropy(logits.flatten(0, 1), tokens[idx + 1].flatten(),
                                 reduction="sum")
    model.train(was_training)
    return total / (n * block * math.log(2))


def train_lm(
    model_fn: Callable[[Vocab], nn.Module] | None = None,
    make_optimizer: Callable[[nn.Module], object] | None = None,
    steps: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    eval_every: int | None = None,
    *,
    data: CharData | None = None,
) -> dict[str, object]:
    """Train a character LM by next-character cross-entropy; losses in bits per char.

    ``model_fn(vocab)`` builds the model (default: :class:`TinyGPT` of
    :func:`lm_defaults`) right after ``torch.manual_seed(seed)``; it must have a
    ``block`` attribute, the context length of the training windows.
    ``make_optimizer(model)`` gets the model (so it can split
    :func:`matrix_params` from :func:`other_params`) and returns one optimizer or a
    list of them, all stepped every step (default: AdamW, lr 3e-3).  The window
    starts of every step are drawn up front from a CPU generator seeded with
    ``seed``, so on the CPU a run is a function of its arguments, bit for bit.

    Data, model and losses stay on ``device`` (default :func:`get_device`); the
    per-step losses and the validation losses (every ``eval_every`` steps and after
    the last) are read back to the host once, at the end.

    Returns a dict: ``train_bpc`` (one per step), ``val_steps`` and ``val_bpc`` (one
    per evaluation), ``final_val_bpc``, ``unigram_bpc`` (the entropy of the training
    characters: a model must beat it to have learned context), ``seconds``,
    ``device``, ``model``, ``optimizers``, ``vocab``.
    """
    defaults = lm_defaults()
    steps = defaults["steps"] if steps is None else steps
    batch_size = defaults["batch_size"] if batch_size is None else batch_size
    eval_every = defaults["eval_every"] if eval_every is None else eval_every
    if steps < 1:
        raise ValueError(f"Invalid steps: {steps}")
    if batch_size < 1:
        raise ValueError(f"Invalid batch_size: {batch_size}")
    device = get_device() if device is None else torch.device(device)
    if model_fn is None:
        model_fn = lambda vocab: TinyGPT(
            vocab, d_model=defaults["d_model"], n_layer=defaults["n_layer"],
            n_head=defaults["n_head"], block=defaults["block"])
    if make_optimizer is None:
        from optbook import AdamW
        make_optimizer = lambda m: AdamW(m.parameters(), lr=3e-3)

    torch.manual_seed(seed)
    if data is None:
        data = default_data(defaults["n_chars"], defaults["block"])
    model = model_fn(data.vocab).to(device)
    made = make_optimizer(model)
    optimizers = list(made) if isinstance(made, (list, tuple)) else [made]
    block = model.block
    train_ids, val_ids = data.train.to(device), data.val.to(device)

    # every step's window starts, drawn at once: one host-to-device copy
    generator = torch.Generator().manual_seed(seed)
    starts = torch.randint(train_ids.numel() - block, (steps, batch_size),
                           generator=generator).to(device)
    offsets = torch.arange(block, device=device)
    losses = torch.empty(steps, device=device)
    val_steps: list[int] = []
    val_losses: list[Tensor] = []
    start = time.perf_counter()
    model.train()
    for k in range(steps):
        idx = starts[k, :, None] + offsets
        logits = model(train_ids[idx])
        loss = F.cross_entropy(logits.flatten(0, 1), train_ids[idx + 1].flatten())
        for optimizer in optimizers:
            optimizer.zero_grad()
        loss.backward()
        for optimizer in optimizers:
            optimizer.step()
        losses[k] = loss.detach()
        if (eval_every and (k + 1) % eval_every == 0) or k + 1 == steps:
            val_steps.append(k + 1)
            val_losses.append(evaluate_bpc(model, val_ids))
    train_bpc = (losses / math.log(2)).tolist()  # the one host sync of the run
    val_bpc = torch.stack(val_losses).tolist()
    seconds = time.perf_counter() - start
    return {
        "train_bpc": train_bpc,
        "val_steps": val_steps,
        "val_bpc": val_bpc,
        "final_val_bpc": val_bpc[-1],
        "unigram_bpc": unigram_bpc(data.train, len(data.vocab)),
        "seconds": seconds,
        "device": device,
        "model": model,
        "optimizers": optimizers,
        "vocab": data.vocab,
    }


@torch.no_grad()
def generate(model: TinyGPT, vocab: Vocab, prompt: str, n_chars: int = 200,
             temperature: float = 1.0, seed: int = 0) -> str:
    """``prompt`` continued by ``n_chars`` characters sampled from the model (a CPU
    generator seeded with ``seed`` draws them, so the sample is reproducible)."""
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    idx = vocab.encode(prompt)[None].to(device)
    was_training = model.training
    model.eval()
    for _ in range(n_chars):
        logits = model(idx[:, -model.block :])[0, -1].float().cpu() / temperature
        nxt = torch.multinomial(logits.softmax(-1), 1, generator=generator)
        idx = torch.cat([idx, nxt[None].to(device)], dim=1)
    model.train(was_training)
    return vocab.decode(idx[0].cpu())
