/// Replaced by packaging/build-deb.sh with the git revision it builds; development builds say "unknown".
let embeddedRevision = "unknown"
