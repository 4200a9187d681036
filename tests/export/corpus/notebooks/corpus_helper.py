"""A module beside the corpus notebooks."""


def greet(name):
    return f"hello {name} from corpus_helper"
