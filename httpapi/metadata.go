package httpapi

import (
	"net/http"
)

// PathMetadata is the OData metadata document that @odata.context points at.
const PathMetadata = "/api/$metadata"

// metadataXML is a small static CSDL document describing the two responses:
// enough for OData tools to resolve @odata.context. Records carry the
// contract's documented columns and the reference example's additional ones.
const metadataXML = `<?xml version="1.0" encoding="utf-8"?>
<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">
  <edmx:DataServices>
    <Schema Namespace="microsoft.windowsDefenderATP.api" xmlns="http://docs.oasis-open.org/odata/ns/edm">
      <ComplexType Name="CertificateName">
        <Property Name="commonName" Type="Edm.String"/>
        <Property Name="organization" Type="Edm.String"/>
        <Property Name="organizationalUnit" Type="Edm.String"/>
        <Property Name="locality" Type="Edm.String"/>
        <Property Name="state" Type="Edm.String"/>
        <Property Name="country" Type="Edm.String"/>
        <Property Name="email" Type="Edm.String"/>
      </ComplexType>
      <ComplexType Name="AssetCertificateAssessment" OpenType="true">
        <Property Name="deviceId" Type="Edm.String"/>
        <Property Name="deviceName" Type="Edm.String"/>
        <Property Name="thumbprint" Type="Edm.String"/>
        <Property Name="path" Type="Edm.String"/>
        <Property Name="signatureAlgorithm" Type="Edm.String"/>
        <Property Name="keySize" Type="Edm.Int32"/>
        <Property Name="expirationDate" Type="Edm.DateTimeOffset"/>
        <Property Name="issueDate" Type="Edm.DateTimeOffset"/>
        <Property Name="subjectType" Type="Edm.String"/>
        <Property Name="serialNumber" Type="Edm.String"/>
        <Property Name="issuedTo" Type="Edm.String"/>
        <Property Name="issuedBy" Type="Edm.String"/>
        <Property Name="keyUsage" Type="Edm.String"/>
        <Property Name="extendedKeyUsage" Type="Edm.String"/>
        <Property Name="rbacGroupId" Type="Edm.Int64"/>
        <Property Name="rbacGroupName" Type="Edm.String"/>
        <Property Name="keyLength" Type="Edm.Int32"/>
        <Property Name="notAfter" Type="Edm.DateTimeOffset"/>
        <Property Name="notBefore" Type="Edm.DateTimeOffset"/>
        <Property Name="subjectObject" Type="microsoft.windowsDefenderATP.api.CertificateName"/>
        <Property Name="issuerObject" Type="microsoft.windowsDefenderATP.api.CertificateName"/>
        <Property Name="keyUsageArray" Type="Collection(Edm.String)"/>
        <Property Name="extendedKeyUsageArray" Type="Collection(Edm.String)"/>
        <Property Name="isSelfSigned" Type="Edm.Boolean"/>
      </ComplexType>
      <ComplexType Name="ExportFilesResponse">
        <Property Name="exportFiles" Type="Collection(Edm.String)"/>
        <Property Name="generatedTime" Type="Edm.DateTimeOffset"/>
      </ComplexType>
    </Schema>
  </edmx:DataServices>
</edmx:Edmx>
`

// handleMetadata serves the static metadata document. It needs no token:
// it describes the format, not the data.
func (s *Server) handleMetadata(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=86400")
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write([]byte(metadataXML)); err != nil {
		logWriteError(r.Context(), s.log, err)
	}
	return nil
}
