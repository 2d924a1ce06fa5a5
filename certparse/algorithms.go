package certparse

import (
	"crypto"
	"strconv"
)

// sigKind is the public key algorithm a signature algorithm needs.
type sigKind int

const (
	sigUnknown sigKind = iota
	sigRSA             // RSASSA-PKCS1-v1_5
	sigPSS             // RSASSA-PSS, hash and salt from the parameters
	sigECDSA
	sigDSA
	sigEd25519
	sigEd448
)

// hashMD2 stands for MD2, which crypto.Hash does not name.
const hashMD2 = crypto.Hash(1000)

// sigAlg is what the package knows of a signature algorithm OID: its
// Windows name and how to verify it.
type sigAlg struct {
	name string
	kind sigKind
	hash crypto.Hash // 0 when not verifiable (MD4, SHA-0) or not hashed first (EdDSA)
}

// sigAlgs holds the names crypt32 gives signature algorithms (the first
// name of each OID in its signature group). An OID it does not hold is
// shown dotted.
var sigAlgs = func() map[string]sigAlg {
	t := map[string]sigAlg{}
	add := func(oid, name string, kind sigKind, h crypto.Hash) {
		t[encodeOID(oid)] = sigAlg{name, kind, h}
	}
	add("1.2.840.113549.1.1.1", "RSA", sigUnknown, 0) // rsaEncryption used as a signature algorithm: no hash
	add("1.2.840.113549.1.1.2", "md2RSA", sigRSA, hashMD2)
	add("1.2.840.113549.1.1.3", "md4RSA", sigRSA, 0)
	add("1.2.840.113549.1.1.4", "md5RSA", sigRSA, crypto.MD5)
	add("1.2.840.113549.1.1.5", "sha1RSA", sigRSA, crypto.SHA1)
	add("1.2.840.113549.1.1.10", "RSASSA-PSS", sigPSS, 0)
	add("1.2.840.113549.1.1.11", "sha256RSA", sigRSA, crypto.SHA256)
	add("1.2.840.113549.1.1.12", "sha384RSA", sigRSA, crypto.SHA384)
	add("1.2.840.113549.1.1.13", "sha512RSA", sigRSA, crypto.SHA512)
	add("1.3.14.3.2.2", "md4RSA", sigRSA, 0)
	add("1.3.14.3.2.3", "md5RSA", sigRSA, crypto.MD5)
	add("1.3.14.3.2.4", "md4RSA", sigRSA, 0)
	add("1.3.14.3.2.13", "sha1DSA", sigDSA, 0) // SHA-0, which nothing implements
	add("1.3.14.3.2.15", "shaRSA", sigRSA, 0)  // SHA-0 too
	add("1.3.14.3.2.27", "dsaSHA1", sigDSA, crypto.SHA1)
	add("1.3.14.3.2.29", "sha1RSA", sigRSA, crypto.SHA1)
	add("1.3.14.7.2.3.1", "md2RSA", sigRSA, hashMD2)
	add("1.2.840.10040.4.3", "sha1DSA", sigDSA, crypto.SHA1)
	add("2.16.840.1.101.3.4.3.2", "sha256DSA", sigDSA, crypto.SHA256)
	add("1.2.840.10045.4.1", "sha1ECDSA", sigECDSA, crypto.SHA1)
	add("1.2.840.10045.4.3", "specifiedECDSA", sigUnknown, 0)
	add("1.2.840.10045.4.3.2", "sha256ECDSA", sigECDSA, crypto.SHA256)
	add("1.2.840.10045.4.3.3", "sha384ECDSA", sigECDSA, crypto.SHA384)
	add("1.2.840.10045.4.3.4", "sha512ECDSA", sigECDSA, crypto.SHA512)
	add("1.3.101.112", "Ed25519", sigEd25519, 0)
	add("1.3.101.113", "Ed448", sigEd448, 0)
	return t
}()

// Public key algorithm OIDs.
var (
	oidKeyRSA     = encodeOID("1.2.840.113549.1.1.1")
	oidKeyRSAPSS  = encodeOID("1.2.840.113549.1.1.10")
	oidKeyDSA     = encodeOID("1.2.840.10040.4.1")
	oidKeyDSAOIW  = encodeOID("1.3.14.3.2.12")
	oidKeyEC      = encodeOID("1.2.840.10045.2.1")
	oidKeyEd25519 = encodeOID("1.3.101.112")
	oidKeyEd448   = encodeOID("1.3.101.113")
	oidKeyX25519  = encodeOID("1.3.101.110")
	oidKeyX448    = encodeOID("1.3.101.111")
	oidFieldPrime = encodeOID("1.2.840.10045.1.1")
)

// curveBits gives the size of named elliptic curves.
var curveBits = func() map[string]int {
	t := map[string]int{}
	add := func(oid string, bits int) { t[encodeOID(oid)] = bits }
	add("1.2.840.10045.3.1.1", 192) // P-192
	add("1.2.840.10045.3.1.2", 192)
	add("1.2.840.10045.3.1.3", 192)
	add("1.2.840.10045.3.1.4", 239)
	add("1.2.840.10045.3.1.5", 239)
	add("1.2.840.10045.3.1.6", 239)
	add("1.2.840.10045.3.1.7", 256) // P-256
	add("1.3.132.0.33", 224)        // P-224
	add("1.3.132.0.34", 384)        // P-384
	add("1.3.132.0.35", 521)        // P-521
	add("1.3.132.0.10", 256)        // secp256k1
	add("1.3.132.0.31", 192)        // secp192k1
	add("1.3.132.0.32", 225)        // secp224k1: its order is 225 bits
	add("1.2.156.10197.1.301", 256) // SM2
	// brainpoolP160r1, brainpoolP160t1 ... brainpoolP512r1, brainpoolP512t1
	for i, bits := range []int{160, 160, 192, 192, 224, 224, 256, 256, 320, 320, 384, 384, 512, 512} {
		add("1.3.36.3.3.2.8.1.1."+strconv.Itoa(i+1), bits)
	}
	return t
}()

// keyUsageNames are the names Windows gives the key usage bits, in bit
// order. Windows names bit 6 (cRLSign) twice: its CERT_OFFLINE_CRL_SIGN
// and CERT_CRL_SIGN flags are the same bit, and it lists both.
var keyUsageNames = [...][]string{
	{"Digital Signature"},
	{"Non-Repudiation"},
	{"Key Encipherment"},
	{"Data Encipherment"},
	{"Key Agreement"},
	{"Certificate Signing"},
	{"Off-line CRL Signing", "CRL Signing"},
	{"Encipher Only"},
	{"Decipher Only"},
}

// ekuNames are the friendly names crypt32 gives extended key usages
// (its enhanced key usage OID group).
var ekuNames = newOIDTable(
	"1.3.6.1.5.5.7.3.1", "Server Authentication",
	"1.3.6.1.5.5.7.3.2", "Client Authentication",
	"1.3.6.1.5.5.7.3.3", "Code Signing",
	"1.3.6.1.5.5.7.3.4", "Secure Email",
	"1.3.6.1.5.5.7.3.5", "IP security end system",
	"1.3.6.1.5.5.7.3.6", "IP security tunnel termination",
	"1.3.6.1.5.5.7.3.7", "IP security user",
	"1.3.6.1.5.5.7.3.8", "Time Stamping",
	"1.3.6.1.5.5.7.3.9", "OCSP Signing",
	"2.5.29.37.0", "Any Purpose",
	"1.3.6.1.5.5.8.2.2", "IP security IKE intermediate",
	"1.3.6.1.5.2.3.5", "KDC Authentication",
	"1.3.6.1.4.1.311.10.3.1", "Microsoft Trust List Signing",
	"1.3.6.1.4.1.311.10.3.2", "Microsoft Time Stamping",
	"1.3.6.1.4.1.311.10.3.3", "Microsoft Server Gated Crypto",
	"1.3.6.1.4.1.311.10.3.4", "Encrypting File System",
	"1.3.6.1.4.1.311.10.3.4.1", "File Recovery",
	"1.3.6.1.4.1.311.10.3.5", "Windows Hardware Driver Verification",
	"1.3.6.1.4.1.311.10.3.6", "Windows System Component Verification",
	"1.3.6.1.4.1.311.10.3.7", "OEM Windows System Component Verification",
	"1.3.6.1.4.1.311.10.3.8", "Embedded Windows System Component Verification",
	"1.3.6.1.4.1.311.10.3.9", "Root List Signer",
	"1.3.6.1.4.1.311.10.3.10", "Qualified Subordination",
	"1.3.6.1.4.1.311.10.3.11", "Key Recovery",
	"1.3.6.1.4.1.311.10.3.12", "Document Signing",
	"1.3.6.1.4.1.311.10.3.13", "Lifetime Signing",
	"1.3.6.1.4.1.311.10.5.1", "Digital Rights",
	"1.3.6.1.4.1.311.10.6.1", "Key Pack Licenses",
	"1.3.6.1.4.1.311.10.6.2", "License Server Verification",
	"1.3.6.1.4.1.311.20.2.1", "Certificate Request Agent",
	"1.3.6.1.4.1.311.20.2.2", "Smart Card Logon",
	"1.3.6.1.4.1.311.21.5", "Private Key Archival",
	"1.3.6.1.4.1.311.21.6", "Key Recovery Agent",
	"1.3.6.1.4.1.311.21.19", "Directory Service Email Replication",
	"1.3.6.1.4.1.311.54.1.2", "Remote Desktop Authentication",
	"1.3.6.1.4.1.311.61.1.1", "Kernel Mode Code Signing",
	"2.16.840.1.113730.4.1", "Netscape Server Gated Crypto",
)
