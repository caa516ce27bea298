package examples

import (
	"fmt"

	flotilla "github.com/flotilla-dev/flotilla/clients/go"
)

// DescribeError turns a failed call into a message naming the reason and the bad fields.
func DescribeError(err error) string {
	d, ok := flotilla.Details(err)
	if !ok {
		return err.Error() // not from the server: a local or network error
	}
	msg := fmt.Sprintf("%s: %s", d.Code, d.Message)
	if d.Reason != "" {
		msg += fmt.Sprintf(" (reason %s %v)", d.Reason, d.Metadata)
	}
	for _, v := range d.FieldViolations {
		msg += fmt.Sprintf("; field %s: %s", v.Field, v.Description)
	}
	if d.HasRetryDelay {
		msg += fmt.Sprintf("; retry in %s", d.RetryDelay)
	}
	return msg
}
