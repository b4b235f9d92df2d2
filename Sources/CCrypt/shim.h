// libxcrypt's crypt_r (Debian's libcrypt-dev): verifies the bcrypt hashes of a web configuration's basic_auth_users.
#include <crypt.h>
