/// Replaced by packaging/build-deb.sh with the git revision it builds; development builds say "unknown".
let embeddedRevision = "c66fb3e4debf-modified"
