#!/bin/sh
# Make a test CA, a server certificate and client certificates with Modbus roles, with openssl.
#
#     sh examples/make_certificates.sh certs/ [ROLE...]      (roles default to: operator engineer)
#
# Writes the same files as make_certificates.py: ca.pem/.key, server.pem/.key
# (for localhost, 127.0.0.1 and ::1), ROLE.pem/.key for each role, and
# no-role.pem/.key.  The role is the certificate extension 1.3.6.1.4.1.50316.802.1,
# an ASN.1 UTF8String: in an openssl extension file,
#
#     1.3.6.1.4.1.50316.802.1 = ASN1:UTF8String:operator
#
# For tests and labs: keys are unencrypted and valid for 30 days.  OpenSSL 3.
set -eu

dir=${1:?"usage: $0 DIRECTORY [ROLE...]"}
shift
[ $# -gt 0 ] || set -- operator engineer
mkdir -p "$dir"
cd "$dir"
umask 077

new_key_and_request() {  # NAME SUBJECT
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
}

sign() {  # NAME EXTENSION-FILE
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
        -days 30 -sha256 -extfile "$2" -out "$1.pem" 2>/dev/null
    rm "$1.csr" "$2"
}

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -sha256 \
    -keyout ca.key -out ca.pem -subj "/CN=modbuskit example CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

new_key_and_request server "/CN=localhost"
printf 'subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1\nextendedKeyUsage = serverAuth\n' > server.ext
sign server server.ext

for role in "$@"; do
    new_key_and_request "$role" "/CN=modbus client ($role)"
    printf 'extendedKeyUsage = clientAuth\n1.3.6.1.4.1.50316.802.1 = ASN1:UTF8String:%s\n' "$role" > "$role.ext"
    sign "$role" "$role.ext"
done

new_key_and_request no-role "/CN=modbus client (no role)"
printf 'extendedKeyUsage = clientAuth\n' > no-role.ext
sign no-role no-role.ext

rm -f ca.srl
echo "wrote ca, server, $* and no-role certificates to $dir"
