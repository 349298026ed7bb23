"""The ground floor every other package stands on: the lake's folders and files, the project's
settings, exchange time and the facts of the DBN format. It imports no other package of the
project."""
