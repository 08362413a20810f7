from nncli.cli import console

console()
