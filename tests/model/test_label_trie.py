import pytest

from model.label_trie import LabelTrie

EOS, COMMA = 0, 9


@pytest.fixture
def trie() -> LabelTrie:
    # "open" = [1], "open door" = [1, 2], "close door" = [3, 2]
    return LabelTrie([[1], [1, 2], [3, 2]], terminators={EOS, COMMA})


def test_root_allows_only_label_starts(trie: LabelTrie) -> None:
    assert sorted(trie.allowed(trie.root)) == [1, 3]


def test_a_label_that_prefixes_another_may_end_or_continue(trie: LabelTrie) -> None:
    node = trie.step(trie.root, 1)
    assert node is not None and node.label == 0
    assert sorted(trie.allowed(node)) == [EOS, 2, COMMA]
    assert not trie.is_final(node)
    assert trie.step(node, EOS) is None  # "open" ends here
    longer = trie.step(node, 2)
    assert longer is not None and longer.label == 1 and trie.is_final(longer)


def test_invalid_tokens_are_refused(trie: LabelTrie) -> None:
    with pytest.raises(ValueError, match="not allowed"):
        trie.step(trie.root, EOS)  # nothing decoded yet
    node = trie.step(trie.root, 3)
    assert node is not None
    with pytest.raises(ValueError, match="not allowed"):
        trie.step(node, COMMA)  # "close" is not a label


def test_identical_or_empty_labels_are_refused() -> None:
    with pytest.raises(ValueError, match="tokenize identically"):
        LabelTrie([[1, 2], [1, 2]], terminators={EOS})
    with pytest.raises(ValueError, match="no tokens"):
        LabelTrie([[1], []], terminators={EOS})
