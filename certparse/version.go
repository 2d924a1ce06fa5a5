package certparse

import "github.com/certinv/certinv"

// Version is the version of what Parse derives and of how a record encodes
// it. Stores keep each certificate's record fragment, derived once at
// ingest; bump Version whenever Parse's output changes for any certificate
// (a field fixed or added) or certinv.AppendCertificateJSON encodes it
// differently, and stores derive the fragments of the certificates they
// hold anew from their DER (sqlite.DB.Rederive), so the change reaches every
// device without a new report.
const Version = 1

// Fragment returns the record fragment of the certificate der: what
// certinv.AppendCertificateJSON makes of Parse(der). Stores keep it.
func Fragment(der []byte) ([]byte, error) {
	c, err := Parse(der)
	if err != nil {
		return nil, err
	}
	return certinv.AppendCertificateJSON(nil, c), nil
}
