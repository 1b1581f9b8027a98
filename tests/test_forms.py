"""Answer forms (rag/forms.py): question kinds, units, whole spans, shaped answers."""
import pytest

from rag.forms import clip, question_kind, shape, whole_span
from rag.units import units, words

MANUAL = """To save the current figure as Encapsulated PostScript, use the print command:
    print -deps figure1.eps
The file is written to the current directory. This is because print resolves
relative names against pwd.

Options:
- -color prints in colour
- -landscape rotates the page, e.g. for wide plots
Octave uses a different prompt, "+", when a line is incomplete (for example an open
bracket). It waits for the rest."""


@pytest.mark.parametrize("question,kind", [
    ("How do I save a plot as PostScript?", "howto"),
    ("how can i change the prompt", "howto"),
    ("Is there a way to clear the screen?", "howto"),
    ("What's the best way to read a CSV file?", "howto"),
    ("Why is the file written to the current directory?", "why"),
    ("What is the difference between a cell array and a struct?", "why"),
    ("What happens when a line is incomplete?", "why"),
    ("What is a cell array?", "definition"),
    ("What does the -q option do?", "definition"),
    ("What are cell arrays?", "definition"),
    ("What is the capital of France?", "factoid"),
    ("What is the capital?", "factoid"),
    ("What are stators attached to?", "factoid"),
    ("Which prompt is shown when a line is incomplete?", "factoid"),
    ("Who won Super Bowl 50?", "factoid"),
    ("How many people live in Jacksonville?", "factoid"),
    ("What year did the Normans conquer England?", "factoid"),
])
def test_question_kind(question, kind):
    assert question_kind(question) == kind


def test_units_keep_code_lines_items_and_sentences_whole():
    got = [(u.kind, MANUAL[u.start:u.end]) for u in units(MANUAL)]
    assert got[0] == ("sentence", "To save the current figure as Encapsulated PostScript, use "
                                  "the print command:")
    assert got[1] == ("code", "print -deps figure1.eps")
    assert got[2] == ("sentence", "The file is written to the current directory.")
    assert got[3][1].startswith("This is because print resolves\nrelative names")
    assert ("item", "- -color prints in colour") in got
    # "e.g." does not end the item's sentence
    assert ("item", "- -landscape rotates the page, e.g. for wide plots") in got
    assert got[-1] == ("sentence", "It waits for the rest.")


def test_a_sentence_holds_a_word_and_a_shebang_or_page_reference_does_not_end_one():
    text = ("Create a file containing:\n\n#! octave-interpreter-name -qf\n\n"
            "Run it as a program. Wow! So it ends.")
    got = [text[u.start:u.end] for u in units(text)]
    assert got == ["Create a file containing:", "#! octave-interpreter-name -qf",
                   "Run it as a program.", "Wow!", "So it ends."]
    # a manual's page reference does not end its sentence either
    text = "To keep it open, see pause mouse close (p. 185). Then close it."
    assert [text[u.start:u.end] for u in units(text)] == [
        "To keep it open, see pause mouse close (p. 185).", "Then close it."]


def test_whole_span_never_cuts_a_string_a_bracket_or_an_identifier():
    text = 'Save it with print("-deps", "figure1.eps") and SOME_VARIABLE=3 now.'
    a = text.index("-deps")
    s, e = whole_span(text, a, a + 5)  # inside a string, inside a call
    assert text[s:e] == 'print("-deps", "figure1.eps")'
    b = text.index("VARIABLE")
    s, e = whole_span(text, b, b + 8)
    assert text[s:e] == "SOME_VARIABLE"
    c = text.index("figure1")
    s, e = whole_span(text, c, c + 7)
    assert text[s:e] == 'print("-deps", "figure1.eps")'  # an argument: the whole call
    # typeset manuals quote in typographic marks, gnuplot's with ’ on both sides
    typeset = "You can use an explicit command plot ’file.png’ binary filetype=png."
    s, e = whole_span(typeset, typeset.index("command"), typeset.index("’file") + 5)
    assert typeset[s:e] == "command plot ’file.png’"
    s, e = whole_span(typeset, typeset.index("png’"), typeset.index(" binary"))
    assert typeset[s:e] == "’file.png’"
    quoted = "Octave’s manual says “run the load command” for it."
    s, e = whole_span(quoted, quoted.index("says"), quoted.index(" load"))
    assert quoted[s:e] == "says “run the load command”"
    assert quoted[slice(*whole_span(quoted, 0, 8))] == "Octave’s"  # an apostrophe
    # an elision does not pair with a possessive further on
    elided = "In the ’90s many users’ files were small. Use ’em all. The users’ home is here."
    at = elided.index("users’ files")
    assert elided[slice(*whole_span(elided, at, at + len("users’ files")))] == "users’ files"
    at = elided.index("users’ home")
    assert elided[slice(*whole_span(elided, at, at + len("users’ home")))] == "users’ home"
    # a word joined by hyphens is one token, and a shell command one command (a user was
    # told "aptitude safe" for "aptitude safe-upgrade", "sudo" for "$ sudo pbuilder create")
    manual = "Use aptitude safe-upgrade for a well-known fix.\n\n  $ sudo pbuilder create\n"
    at = manual.index("aptitude")
    assert manual[slice(*whole_span(manual, at, at + len("aptitude safe")))] == \
        "aptitude safe-upgrade"
    at = manual.index("known")
    assert manual[slice(*whole_span(manual, at, at + 5))] == "well-known"
    # a name before a hyphenated word stays the name (SQuAD: "Norman Foster", the answer, of
    # "the Norman Foster-designed tower")
    prose = "the Norman Foster-designed tower and a Wi-Fi card"
    at = prose.index("Norman")
    assert prose[slice(*whole_span(prose, at, at + len("Norman Foster")))] == "Norman Foster"
    at = prose.index("Wi")
    assert prose[slice(*whole_span(prose, at, at + 2))] == "Wi-Fi"
    at = manual.index("sudo")
    assert manual[slice(*whole_span(manual, at, at + 4))] == "sudo pbuilder create"
    price = "revenue of\n$ 100 million in 2019, up from the year before, and more."
    at = price.index("100")
    assert price[slice(*whole_span(price, at, at + len("100 million")))] == "100 million"
    # prose is left alone (a sentence's final stop is not taken)
    prose = "The Denver Broncos won Super Bowl 50."
    d = prose.index("Denver")
    assert whole_span(prose, d, d + len("Denver Broncos")) == (d, d + len("Denver Broncos"))


def test_shape_howto_gives_the_sentence_and_the_command_it_introduces():
    at = MANUAL.index("-deps")
    found = shape([MANUAL], [(0.6, 0, at, at + 5), (0.1, 0, at + 6, at + 17)], "howto", False)
    assert found is not None
    p, sh = found
    text = MANUAL[sh.start:sh.end]
    assert p == 0 and sh.form == "steps"
    assert text.startswith("To save the current figure") and text.endswith("figure1.eps")
    assert MANUAL[sh.short[0]:sh.short[1]] == "-deps"


def test_shape_why_takes_the_explaining_sentence_that_follows():
    at = MANUAL.index("current directory")
    _, sh = shape([MANUAL], [(0.5, 0, at, at + 17)], "why", False)
    text = MANUAL[sh.start:sh.end]
    assert text.startswith("The file is written") and text.endswith("against pwd.")
    assert sh.form == "sentence"


def test_a_heading_is_its_own_unit_and_a_colon_brings_the_command_it_introduces():
    text = ("7.1 debdiff\n\nYou can compare two source packages with the debdiff command.\n\n"
            "To read a file with semicolons as the delimiter:\n\nset datafile separator \";\"\n\n"
            "See the next section.")
    cut = [text[u.start:u.end] for u in units(text)]
    assert cut[:2] == ["7.1 debdiff",
                       "You can compare two source packages with the debdiff command."]
    at = text.index("semicolons")
    _, sh = shape([text], [(0.5, 0, at, at + 10)], "howto", False)
    assert text[sh.start:sh.end] == ("To read a file with semicolons as the delimiter:\n\n"
                                     "set datafile separator \";\"")


def test_a_heading_line_of_the_section_path_is_never_the_answer():
    text = ("2.4.5 Commands for Manipulating the History\n\nOctave keeps the last 1000 "
            "commands you type in the history file.")
    at = text.index("Commands")
    spans = [(0.6, 0, 0, 5), (0.2, 0, at, at + 8), (0.15, 0, text.index("1000"),
                                                     text.index("1000") + 4)]
    path = "2 Getting Started > Command Line Editing > Commands for Manipulating the History"
    _, sh = shape([text], spans, "factoid", False, headings=[path])
    assert text[sh.start:sh.end] == ("Octave keeps the last 1000 commands you type in the "
                                     "history file.")
    _, numbered = shape([text], spans, "factoid", False)  # numbered as a subsection
    assert (numbered.start, numbered.end) == (sh.start, sh.end)
    # a title line is a heading when it names a section of the passage's path
    titled = text.replace("2.4.5 ", "")
    spans = [(0.6, 0, 0, 8), (0.3, 0, titled.index("1000"), titled.index("1000") + 4)]
    _, plain = shape([titled], spans, "factoid", False, headings=["2 Getting Started"])
    assert titled[plain.start:plain.end] == "Commands for Manipulating the History"
    _, known = shape([titled], spans, "factoid", False, headings=[path])
    assert titled[known.start:known.end].startswith("Octave keeps the last 1000")


def test_what_is_not_a_heading_stays_a_candidate_and_a_heading_alone_gives_what_follows():
    from rag.units import is_heading
    for line, path in [("127.0.0.1 localhost", ""), ("3.10 or later", ""),
                       ("1. Install", "Setup > Install"), ("2.4.5 Commands", "")]:
        text = f"Use this:\n\n{line}\nThen run it."  # (no blank line after: not a heading)
        u = next(u for u in units(text) if text[u.start:u.end].startswith(line[:4]))
        assert not is_heading(text, u, path), line
    text = "2.4.5 Commands for the History\n\nOctave keeps 1000 commands."
    _, sh = shape([text], [(0.9, 0, 6, 14)], "factoid", False)  # all the mass on the heading
    assert text[sh.start:sh.end] == "Octave keeps 1000 commands."


def test_the_stretch_opens_and_closes_on_units_with_mass_and_stays_in_its_section():
    from rag.forms import stretch
    text = ("One two three four five. Six seven eight nine ten. Eleven twelve thirteen. "
            "Fourteen fifteen.\n\n3.2 Next section\n\nSixteen seventeen eighteen.")
    cut = {0: units(text)}
    assert len(cut[0]) == 6  # four sentences, a heading, one more sentence
    heading = lambda at, i: i == 4  # noqa: E731
    # the unit before the mass holds none: no run opens on it
    assert stretch([text], cut, {(0, 1): 0.9}, 40, heading) == (0, 1, 1)
    # two units with mass, within the words: one run; too far apart for 8 words: the larger
    assert stretch([text], cut, {(0, 1): 0.4, (0, 3): 0.3}, 40, heading) == (0, 1, 3)
    assert stretch([text], cut, {(0, 1): 0.4, (0, 3): 0.3}, 8, heading) == (0, 1, 1)
    # a heading between two units with mass: no run crosses it
    assert stretch([text], cut, {(0, 3): 0.3, (0, 5): 0.35}, 40, heading) == (0, 5, 5)
    assert stretch([text], cut, {}, 40, heading) is None


def test_widen_takes_the_neighbour_with_more_mass_then_both_sides_in_turn_within_the_limit():
    from rag.forms import widen
    text = " ".join(f"Sentence {n} has five words." for n in range(9))  # 9 units of 5 words
    cut = units(text)
    held = {3: 0.2}.get
    span = lambda lo, hi: text[cut[lo].start:cut[hi].end]  # noqa: E731
    # from unit 4: the previous one holds mass, then ties alternate, the next side first
    assert widen(text, cut, 4, 4, lambda j: held(j, 0.0), 15) == (3, 5)
    assert widen(text, cut, 4, 4, lambda j: held(j, 0.0), 25) == (2, 6)
    assert widen(text, cut, 4, 4, lambda j: 0.0, 25) == (2, 6)
    assert widen(text, cut, 4, 4, lambda j: 0.0, 20) == (3, 6)  # next, previous, next
    # a unit it may not take ends that side; the limit ends both
    assert widen(text, cut, 4, 4, lambda j: 0.0, 25, skip=lambda j: j == 5) == (0, 4)
    lo, hi = widen(text, cut, 4, 4, lambda j: 0.0, 100, limit=22)
    assert words(span(lo, hi)) == 20 and (lo, hi) == (3, 6)


def test_an_excerpt_quotes_the_stretch_holding_most_of_the_mass_widened_to_whole_units():
    text = ("3.2 Saving history\n\nOctave writes the history only at a clean exit. A crash "
            "skips that step. Set history_save to false to keep nothing. The file is "
            "~/.octave_hist. See the next section for the size.")
    us = [text[u.start:u.end] for u in units(text)]
    at = text.index("clean exit")
    crash, keep = text.index("crash"), text.index("history_save")
    # the best single span is in the first sentence, but more of the mass lies on the next two
    spans = [(0.3, 0, at, at + 10), (0.25, 0, crash, crash + 5), (0.2, 0, keep, keep + 12)]
    _, unit = shape([text], spans, "why", False)
    assert text[unit.start:unit.end] == us[1]  # the best unit alone, without an excerpt
    _, sh = shape([text], spans, "why", False, excerpt=12)
    assert text[sh.start:sh.end] == " ".join(us[2:4])  # the run within 12 words with most
    assert sh.short is None  # the best span lies outside it
    _, wide = shape([text], spans, "why", False, excerpt=25)
    # the run of all three (21 words), then the next sentence: the heading is never taken
    assert text[wide.start:wide.end] == " ".join(us[1:5])
    # never across a heading (a question can title a section): the excerpt stays in its own
    manual = ("Use the xz format when you can. It compresses better than gzip does.\n\n"
              "4.3 What is debmake?\n\nThe debmake command is the helper script for Debian "
              "packaging. It makes the template files.")
    at = manual.index("helper script")
    _, own = shape([manual], [(0.6, 0, at, at + 13)], "factoid", False, excerpt=40)
    assert manual[own.start:own.end] == manual[manual.index("The debmake command"):]
    code_like = manual.replace("4.3 What is debmake?", "8.5 Makefile (shell, GUI)")
    _, own = shape([code_like], [(0.6, 0, at, at + 13)], "factoid", False, excerpt=40)
    assert code_like[own.start:own.end] == code_like[code_like.index("The debmake command"):]
    # all the mass on a heading that ends the passage: that heading alone, nothing widened
    tail = "Some text about it. And more of it.\n\n3.2 Foo bar"
    _, alone = shape([tail], [(0.9, 0, tail.index("Foo"), len(tail))], "why", False, excerpt=40)
    assert tail[alone.start:alone.end] == "3.2 Foo bar"
    # asked for more than the word limit: whole units up to it, never the bare span
    long = " ".join(f"Sentence number {n} of the manual says one thing." for n in range(12))
    at = long.index("number 6")
    for n in (40, 60, 80, 500):
        _, capped = shape([long], [(0.9, 0, at, at + 8)], "why", False, excerpt=n)
        quoted = long[capped.start:capped.end]
        assert quoted.endswith(".") and "number 6" in quoted
        assert min(n, 54) <= words(quoted) <= 60 if n > 40 else 40 <= words(quoted) <= 60


def test_shape_factoid_is_the_short_span_with_its_sentence_as_context():
    at = MANUAL.index('"+"') + 1
    _, sh = shape([MANUAL], [(0.7, 0, at, at + 1)], "factoid", True)
    assert (sh.form, MANUAL[sh.start:sh.end]) == ("span", "+")
    assert MANUAL[sh.context[0]:sh.context[1]].startswith("Octave uses a different prompt")


def test_shape_picks_the_unit_holding_most_candidate_probability_across_passages():
    other = "Plots can be exported. Use saveas(h, 'f.png') to write a PNG file."
    at = other.index("saveas")
    # the single best span is in MANUAL, but most of the probability lies in the other passage
    spans = [(0.3, 0, MANUAL.index("pwd"), MANUAL.index("pwd") + 3),
             (0.25, 1, at, at + 6), (0.2, 1, at, at + 23)]
    p, sh = shape([MANUAL, other], spans, "howto", False)
    assert p == 1 and other[sh.start:sh.end].startswith("Use saveas(h, 'f.png')")
    assert sh.short is None  # the best span lies in the other passage


def test_clip_cuts_an_overlong_sentence_at_clauses_around_the_answer():
    long = ", ".join(f"clause number {i} says little" for i in range(30)) + "."
    at = long.index("clause number 20")
    s, e = clip(long, 0, len(long), (at, at + 16), limit=20)
    assert s <= at and e >= at + 16 and words(long[s:e]) <= 20


def test_an_excerpt_does_not_end_on_a_sentence_left_hanging():
    """An excerpt that would end on "... look like this:" or a sentence with no end takes
    what it leads into, whole, within 60 words, letting go of its first units to make room
    (never past the one it is kept around); a short command line is not hanging, and what
    does not fit leaves the excerpt as it was."""
    from rag.forms import finish

    text = ("The history is saved to a file. Example code in the startup file might look "
            "like this:\n\nhistory_file (\"~/new/.octave_hist\");\n\nThat is all.")
    cut = units(text)
    assert [u.kind for u in cut] == ["sentence", "sentence", "code", "sentence"]
    assert finish(text, cut, 0, 1) == (0, 2)  # through the code the colon introduces
    assert finish(text, cut, 0, 2) == (0, 2)  # code ends an excerpt
    assert finish(text, cut, 0, 1, limit=18) == (0, 1)  # no room: as it was
    assert finish(text, cut, 0, 1, limit=18, keep=0) == (0, 1)  # (the first unit is kept)
    assert finish(text, cut, 0, 1, limit=18, keep=1) == (1, 2)  # room made: the first let go
    hanging = ("Possible values for type are\n\n- int8\n- int32\n- int64\n\n"
               "The default is int32.")
    cut = units(hanging)
    assert finish(hanging, cut, 0, 0) == (0, 3)  # the whole list it introduces
    assert finish(hanging, cut, 0, 0, limit=8) == (0, 0)  # not all of it fits: as it was
    command = "To enable it:\n\nset logscale zcb\n\nTo disable z axis log scaling:"
    cut = units(command)
    assert finish(command, cut, 0, 1) == (0, 1)  # "set logscale zcb" is a command, not hanging
    command = "Install it with\nsudo apt install nginx\n\nThe server listens on port 80."
    cut = units(command)
    assert [command[u.start:u.end] for u in cut][-1] == "The server listens on port 80."
    assert finish(command, cut, 0, len(cut) - 2) == (0, len(cut) - 2)
    label = ("The history is kept in ~/.octave_hist. It can be moved.\n\nExamples:\n\n"
             "history_file (\"~/a\");\nhistory_file (\"~/b\");\nhistory_file (\"~/c\");")
    cut = units(label)
    assert finish(label, cut, 0, 2) == (0, 3)  # room: the label and its code
    assert finish(label, cut, 0, 2, limit=12) == (0, 1)  # none: the label alone is dropped
    assert finish(label, cut, 0, 2, limit=12, keep=2) == (1, 3)  # the core: room made for it
    announced = ("Version strings can be compared using the dpkg command as follows.\n\n"
                 "$ dpkg --compare-versions ver1 op ver2\n\nThe rule is simple.")
    cut = units(announced)
    assert finish(announced, cut, 0, 0) == (0, 1)  # "as follows." announces the command
    items = ("- To set the bitrate to 64 kbit/s:\n\nffmpeg -i in.avi -b:v 64k out.avi\n\n"
             "- To force the frame rate to 24 fps:\n\nffmpeg -i in.avi -r 24 out.avi\n\nDone.")
    cut = units(items)
    assert finish(items, cut, 0, 2)[1] == 3  # a list item ending on a colon leads on too



def test_a_span_that_closes_one_bracket_and_opens_another_takes_both_whole():
    """Counted in order, not in sum: one ")" then one "(" leaves two pairs cut."""
    text = "This process is Path MTU (PMTU) discovery (RFC1191) and the tracepath(8) command"
    s, e = whole_span(text, text.index("PMTU)"), text.index("RFC1191") + 7)
    assert text[s:e] == "(PMTU) discovery (RFC1191)"


def test_a_sentence_keeps_the_quote_or_bracket_its_stop_stands_in():
    """No unit ends inside a string or a bracket pair that the text closes: the closing mark
    after a stop stays with its sentence, and a stop inside brackets ends nothing."""
    text = ('The query "rUsT" should match the line "Trust me." even though the cases differ. '
            'Assign name=(key1 value1 key2 value2 . . . ). These are treated alike. '
            'Usage: command [arguments ...] Runs command.')
    got = [text[u.start:u.end] for u in units(text)]
    assert got[0] == 'The query "rUsT" should match the line "Trust me."'
    assert "Assign name=(key1 value1 key2 value2 . . . )." in got
    assert "Usage: command [arguments ...]" in got
    quoted = "It works if the ’?’ character marks missing data. So does “!”, said nobody."
    assert [quoted[u.start:u.end] for u in units(quoted)] == [
        "It works if the ’?’ character marks missing data.", "So does “!”, said nobody."]
    assert all(u.count('"') % 2 == 0 and u.count("(") == u.count(")")
               and u.count("[") == u.count("]") for u in got)


def test_a_call_written_over_several_lines_is_one_code_unit():
    text = ("Then add the directory:\n\ntarget_include_directories(MathFunctions\n"
            "          INTERFACE ${CMAKE_CURRENT_SOURCE_DIR}\n          )\n\nNow build it.")
    code = [text[u.start:u.end] for u in units(text) if u.kind == "code"]
    assert code == ["target_include_directories(MathFunctions\n          INTERFACE "
                    "${CMAKE_CURRENT_SOURCE_DIR}\n          )"]
    prose = "The option is rarely needed (see\n the next section) and is off."
    assert [u.kind for u in units(prose)] == ["sentence"]  # a bracket after a space is prose


def test_clip_keeps_an_answer_within_the_word_limit_even_when_its_unit_is_longer():
    """A single sentence longer than the limit with no clause to cut at gives its opening
    words; a long block is cut at line ends, never inside a line."""
    sentence = " ".join(f"word{i}" for i in range(80)) + "."
    s, e = clip(sentence, 0, len(sentence), (0, len(sentence)), limit=60)
    assert s == 0 and words(sentence[s:e]) == 60
    block = "\n".join(f"x{i} = f(a{i}, b{i}, c{i});" for i in range(30))
    s, e = clip(block, 0, len(block), (0, len(block)), limit=60)
    assert 0 < words(block[s:e]) <= 60
    assert (s == 0 or block[s - 1] == "\n") and block[e:e + 1] in ("\n", "")


def test_clip_prefers_an_end_at_a_sentence_to_one_after_a_comma():
    text = ("The log is kept in /var/log/apt/history.log. " + "Other words follow here. " * 8
            + "And the tail goes on, with more words, and more")
    at = text.index("/var/log/apt")
    s, e = clip(text, 0, len(text), (at, at + 24), limit=40)
    assert s <= at and text[s:e].endswith(".") and words(text[s:e]) <= 40


def test_a_table_row_is_one_unit_and_no_cut_leaves_a_lone_stop():
    """A user's trial: an answer opened with a lone "|" (a table row's cells split into
    sentences left its closing bar a unit) and another ended on a lone "." (a shell's
    ". /usr/share/..." line cut after its dot to keep within the word limit)."""
    text = ("Actions menu:\n\n| Actions → Forget | Forget packages. They are obsolete. |\n"
            "| Actions → Play Minesweeper | Play a game. |\n\nThen quit.")
    assert [text[u.start:u.end] for u in units(text)] == [
        "Actions menu:", "| Actions → Forget | Forget packages. They are obsolete. |",
        "| Actions → Play Minesweeper | Play a game. |", "Then quit."]
    intro = ("It is useful to have a slightly customized default, so let us create an alias "
             "dquilt for Debian packaging by adding the following lines to the bashrc file in "
             "your home directory. The second line provides the same shell completion "
             "feature of the quilt command to the dquilt command:")
    text = (intro + "\n\nalias dquilt=\"quilt --quiltrc=${HOME}/.quiltrc-dpkg\"\n"
            ". /usr/share/bash-completion/completions/quilt now and then more words here\n"
            "complete -F _quilt_completion -o filenames dquilt and then many more words "
            "follow on this line to make it long enough to need a cut somewhere in it.")
    s, e = clip(text, 0, len(text), (0, len(intro)))
    assert not text[s:e].endswith("\n.") and text[s:e].startswith("It is useful")


def test_an_excerpt_never_ends_on_a_title():
    """A user's trial: answers ended on "Set Actions" (the next definition's term) and,
    led on by a colon, on "RIP Version Control" (the next section's title, underlined)."""
    from rag.forms import finish

    text = ("A route-map entry may specify conditions. If it specifies none, it always "
            "matches.\n\nSet Actions\n\nA route-map entry may specify set actions.")
    got = units(text)
    assert text[got[2].start:got[2].end] == "Set Actions"
    assert finish(text, got, 0, 2) == (0, 1)
    assert finish(text, got, 0, 3) == (0, 3)  # (inside an excerpt it stays)
    text = ("Say no ip split-horizon to turn it off. See the label:\n\nRIP Version Control"
            "\n===================\n\nRIP can be configured to send version 1.")
    got = units(text)
    assert text[got[2].start:got[2].end] == "RIP Version Control"
    assert finish(text, got, 0, 1) == (0, 1)


def test_an_excerpt_is_not_widened_onto_a_footnote():
    """A PDF's footnotes follow their paragraph as "[11] ..." lines: an answer widened to
    its length took the page's notes in (a user's trial, maint-guide: "... name to use for
    packages.\n\n[11] The default package name field length of aptitude is 30")."""
    text = ("Set up the shell environment variables $DEBEMAIL and $DEBFULLNAME so that the "
            "tools know your name.\n\n[11] The default package name field length of "
            "aptitude is 30.\n\n[12] If you follow the Developer's Reference, the ITP "
            "process will catch this kind of issue.")
    at = text.index("$DEBEMAIL")
    _, got = shape([text], [(0.9, 0, at, at + 9)], "howto", False, excerpt=40)
    assert text[got.start:got.end].endswith("know your name.")


def test_an_excerpt_stops_at_a_markdown_heading_the_chunk_runs_on_into():
    """A Markdown chunk holds several small sections ("### cmake", then "### Meson"): its
    path names only the first, so an answer about cmake ran on into Meson's (a user's
    trial); a "#" line between blank lines outside a fenced block is a heading, and a shell
    comment inside one is not."""
    from rag.units import is_heading

    text = ("### cmake\n\nA cmake project generator is provided within build/cmake.\n\n"
            "### Meson\n\nA Meson project is provided within build/meson. Follow its "
            "instructions.\n\n```sh\n# install the tools\n\napt install meson\n```\n")
    at = text.index("cmake project")
    _, got = shape([text], [(0.9, 0, at, at + 5)], "howto", False, excerpt=40)
    assert "Meson" not in text[got.start:got.end]
    marks = {text[u.start:u.end]: is_heading(text, u, "Build > cmake") for u in units(text)}
    assert marks["### Meson"] and not any(v for k, v in marks.items() if "install" in k)
    # (a review) a root shell's prompt is no heading: the command stays in the answer
    text = ("Installing foo\n\nTo install the foo package, run the following command as root:"
            "\n\n# apt-get install foo\n\nThe package pulls in its dependencies.")
    at = text.index("apt-get")
    _, got = shape([text], [(0.9, 0, at, at + 19)], "howto", False, excerpt=60,
                   headings=["Installing foo"])
    assert "# apt-get install foo" in text[got.start:got.end]


def test_an_indented_paragraph_is_prose_and_an_indented_command_is_code():
    """Plain-text FAQs indent every paragraph: its sentences are units of their own, so an
    answer is the sentence that answers, not the whole paragraph read as one code block."""
    from rag.units import looks_like_code

    faq = ("    If you are running stable, all you need to worry about is keeping track of "
           "security updates. If you are running testing, it is a good idea to read the news.")
    assert [u.kind for u in units(faq)] == ["sentence", "sentence"]
    assert looks_like_code("    apt-get install build-essential")
    assert looks_like_code("    make install")


def test_review_cases_a_block_stays_whole_and_clip_respects_order_and_quotes():
    """An indented prose-like line inside a code block does not split it; a line opening
    with a bracket is not a call's head; clip cuts neither inside a bracket opened after a
    stray "1)" nor inside a quotation in curly marks."""
    from rag.units import looks_like_code

    block = ("Put this in the script:\n\n    #!/bin/sh\n    make all\n    echo \"the build "
             "has finished and you can now run the tests\"\n    make check")
    assert [u.kind for u in units(block)] == ["sentence", "code"]
    assert looks_like_code("    sudo apt-get install gcc make autoconf automake libtool pkg-config")
    note = "(Note: this option is deprecated and will be\n  removed in a later release.) Use foo."
    assert [u.kind for u in units(note)] == ["sentence", "sentence"]
    text = ("Step 1) run the tool " + " ".join(f"w{i}" for i in range(50)) + " (for example, "
            + " ".join(f"v{i}" for i in range(20)) + ") and go on.")
    at = text.index("w45")
    s, e = clip(text, 0, len(text), (at, at + 3))
    assert text[s:e].count("(") == text[s:e].count(")")
    quoted = ("He said: “" + ", and then ".join(f"u{i} v{i}" for i in range(20)) + "” to me, "
              + " ".join(f"x{i}" for i in range(30)) + ".")
    at = quoted.index("x20")
    s, e = clip(quoted, 0, len(quoted), (at, at + 3))
    assert quoted[s:e].count("“") == quoted[s:e].count("”")


def test_a_quote_reaching_its_passage_end_goes_on_into_the_document():
    """A chunk may end inside a sentence, or on one introducing a command: the quote runs on
    through the document's following text (the rest of the sentence; what the colon leads
    into, whole), letting go of its first units where that needs room, never of its core;
    what does not fit, or a quote that does not hang, stays as it was."""
    from rag.forms import Shaped, go_on

    passage = "Run the tests first. To build with four jobs at once, type:"
    text = passage + "\n\n    $ frob build --jobs=4\n\nThe cache lives in /var/cache."
    quote = Shaped(0, len(passage), "sentence", None, (0, len(passage)), (21, len(passage)))
    out = go_on(text, quote)
    assert text[out.start:out.end] == passage + "\n\n    $ frob build --jobs=4"
    assert out.form == "steps" and out.context == (out.start, out.end)
    assert go_on(text, quote, limit=11) == quote  # no room, even without the first sentence
    out = go_on(text, quote, limit=12)  # room made by letting the first sentence go
    assert text[out.start:out.end] == passage[21:] + "\n\n    $ frob build --jobs=4"
    kept = Shaped(0, len(passage), "sentence", None, (0, len(passage)), (0, 20))
    assert go_on(text, kept, limit=12) == kept  # (its core is the first sentence)
    cut = "The cache lives in /var/cache/frob and is"  # a chunk ending mid-sentence
    text = cut + " removed by frob clean --all. Next, the network."
    out = go_on(text, Shaped(0, len(cut), "sentence", None, (0, len(cut))))
    assert text[out.start:out.end] == cut + " removed by frob clean --all."
    whole = "The cache is removed by frob clean --all."
    done = Shaped(0, len(whole), "sentence", None, (0, len(whole)))
    assert go_on(whole + "\n\nNext, the network.", done) == done


def test_the_pipeline_runs_a_quote_on_across_a_chunk_boundary(tmp_path, monkeypatch):
    """Over a real knowledge base whose chunk ends on "... type:", the quote is run on into
    the next chunk's command, read from the stored document (bounded: not for a document of
    more chunks than ``READ_MAX_CHUNKS``): the citation's text, end and answer offsets stay
    exact characters of the document."""
    import knowledge.kb
    from conftest import FakeEmbedder, write_corpus
    from knowledge import KnowledgeBase
    from knowledge.chunking import ChunkerSettings
    from knowledge.sync import sync
    from rag.forms import Shaped
    from rag.pipeline import Pipeline, citation_of
    from rag.retrieval import Retriever

    doc = ("The frob tool reads its settings from ~/.frobrc at start-up. To build with four "
           "jobs at once, type:\n\n$ frob build --jobs=4 --keep-going --verbose\n\n"
           "The cache lives in /var/cache/frob/ and is removed by frob clean --all.\n")
    sync(tmp_path / "kb", [write_corpus(tmp_path / "docs", {"frob.txt": doc})],
         embedder=FakeEmbedder(), chunking=ChunkerSettings(size=24, overlap=0, windows=0),
         log=lambda m: None)
    with KnowledgeBase.open(tmp_path / "kb", embedder=FakeEmbedder()) as kb:
        hits = kb.fetch([(1.0, i) for i in range(1, 4)])
        first = next(h for h in hits if h.text.endswith("type:"))
        pipe = Pipeline(Retriever(kb), None, k=3)
        shaped = Shaped(0, len(first.text), "sentence", None, (0, len(first.text)))
        passages, (at, out) = pipe.go_on([first], 0, shaped)
        longer = passages[at]
        assert longer.text.endswith("type:\n\n$ frob build --jobs=4 --keep-going --verbose")
        assert kb.document_text(longer.doc_id)[longer.start:longer.end] == longer.text
        cite = citation_of(longer, span=(out.start, out.end), shaped=out)
        assert doc[cite.answer_start:cite.answer_end] == longer.text[out.start:out.end]
        assert out.form == "steps"
        span = Shaped(0, 5, "span", (0, 5), (0, 5))  # a short span is never run on
        assert pipe.go_on([first], 0, span) == ([first], (0, span))
        assert kb.text_after(first.doc_id, len(doc) + 10, 100) == ""
        assert kb.text_after("no-such-doc", 0, 100) == ""
        monkeypatch.setattr(knowledge.kb, "READ_MAX_CHUNKS", len(hits) - 1)
        assert kb.text_after(first.doc_id, 0, 100) == ""  # a document too long to read
        assert pipe.go_on([first], 0, shaped) == ([first], (0, shaped))


def test_an_excerpt_of_a_description_begins_with_the_term_it_describes():
    """A user's trial on git's configuration reference: "the default of gc.reflogExpire?"
    was answered from the neighbouring entry, its name left out ("... defaults to 30 days"),
    so nothing showed it was another setting's. An option's or a setting's description is
    quoted with its name; a title ("Set Actions") is not a term, and a term another
    paragraph away is not taken."""
    text = ("gc.reflogExpire, gc.<pattern>.reflogExpire\n\ngit reflog expire removes reflog "
            "entries older than this time; defaults to 90 days.\n\n"
            "gc.reflogExpireUnreachable\n\ngit reflog expire removes reflog entries older "
            "than this time and are not reachable from the current tip; defaults to 30 days. "
            "The value \"now\" expires all entries immediately.")
    at = text.index("defaults to 30")
    for excerpt in (0, 40):
        _, got = shape([text], [(0.9, 0, at, at + 22)], "why", False, excerpt=excerpt)
        assert text[got.start:got.end].startswith("gc.reflogExpireUnreachable\n\ngit reflog")
    option = ("--dry-run\n\nShow what would be backed up. Nothing is written.\n\n"
              "--verbose\n\nSay more.")
    at = option.index("Nothing")
    _, got = shape([option], [(0.9, 0, at, at + 7)], "why", False)
    assert option[got.start:got.end] == ("--dry-run\n\nShow what would be backed up. Nothing "
                                         "is written.")
    for text in ("Set Actions\n\nA route-map entry may specify set actions. It applies them.",
                 "gc.auto\n\nOther words.\n\nA route-map entry may specify set actions."):
        at = text.index("It applies") if "It" in text else text.index("A route")
        _, got = shape([text], [(0.9, 0, at, at + 10)], "why", False)
        assert text[got.start:got.end].startswith(("A route", "It applies"))


def test_what_is_a_term_and_what_is_not():
    """Keys of ssh_config and systemd units and environment variables name their entries;
    a table's number, a section number and a command line do not."""
    from rag.forms import _term

    for line, is_term in (("AddressFamily", True), ("ExecStart=", True), ("HOME", True),
                          ("-r, --recursive", True), ("gc.reflogExpire::", True),
                          ("‘--recursive’", True), ("-- Test: -mtime n", True),
                          ("-40", False), ("1.5", False), ("ffmpeg -i in.avi out.avi", False),
                          ("The end", False), ("Returns 0.", False)):
        text = f"Before.\n\n{line}\n\nThe description says what it does."
        u = next(u for u in units(text) if text[u.start:u.end].strip() == line)
        assert _term(text, u) is is_term, line


def test_an_answer_found_on_a_term_quotes_its_description_too():
    """A review: the reader's span on the option itself ("--exclude=PATTERN") gave the
    option alone, its description dropped (a run could not open on a term)."""
    text = ("--add-file=FILE\n\nAdd FILE to the archive.\n\n--exclude=PATTERN\n\nExclude files "
            "matching PATTERN, a glob(3)-style wildcard pattern.\n\n--exclude-backups\n\n"
            "Exclude backup and lock files.")
    at = text.index("--exclude=PATTERN")
    for excerpt in (0, 40):
        _, got = shape([text], [(0.8, 0, at, at + 17)], "definition", False, excerpt=excerpt)
        assert text[got.start:got.end] == ("--exclude=PATTERN\n\nExclude files matching "
                                           "PATTERN, a glob(3)-style wildcard pattern.")


def test_a_notes_subheading_is_a_unit_of_its_own_and_no_excerpt_crosses_it():
    """A note written as apps write it ("## Schedule" with its text right under it, a quote
    block before it): the heading was swallowed into the quote's block and the answer ran
    from the quote over the heading."""
    from rag.units import is_heading

    text = ("> Keep a copy of the password\n> Without it the backups are useless.\n\n"
            "## Schedule\nThe backup runs every night at 02:30 via the systemd timer.\n\n"
            "## Retention\nSeven daily snapshots are kept.\n")
    cut = units(text)
    heads = [u for u in cut if text[u.start:u.end].startswith("##")]
    assert [text[u.start:u.end] for u in heads] == ["## Schedule", "## Retention"]
    assert all(is_heading(text, u, "Backups") for u in heads)
    s = text.index("02:30")
    _, got = shape([text], [(0.9, 0, s, s + 5)], "factoid", False, excerpt=40)
    assert text[got.start:got.end] == ("The backup runs every night at 02:30 via the systemd "
                                       "timer.")
    code = "```\n# setup\nmake\n\n## not a heading in a fence\nmake install\n```\n"
    assert "## not a heading in a fence\nmake install" in [code[u.start:u.end]
                                                           for u in units(code)]


def test_an_answer_is_not_the_askers_question():
    """A mailing-list thread: the asker's "Should I limit the ARC?" held the reader's best
    span; a span in a question sentence is passed over for the next best."""
    text = "Nextcloud gets killed. Should I limit the ARC? Put zfs_arc_max in zfs.conf."
    q, a = text.index("limit the ARC"), text.index("zfs_arc_max")
    _, got = shape([text], [(0.6, 0, q, q + 13), (0.3, 0, a, a + 11)], "factoid", True)
    assert text[got.start:got.end] == "zfs_arc_max"
    _, got = shape([text], [(0.6, 0, q, q + 13)], "factoid", True)  # (only that: kept)
    assert text[got.start:got.end] == "limit the ARC"
    title = ("The End of History and the Last Man is a 1992 book by Francis Fukuyama, expanding "
             "on his 1989 essay The End of History? It argues much.")  # (a statement, kept)
    f = title.index("Francis Fukuyama")
    _, got = shape([title], [(0.6, 0, f, f + 16), (0.3, 0, 0, 18)], "factoid", True)
    assert title[got.start:got.end] == "Francis Fukuyama"
