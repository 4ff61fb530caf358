// Command converge is converge's command line.
//
//	converge demo                 two replicas edit apart, merge, show and resolve a conflict
//	converge doc get|set|…        read and edit documents in a replica folder
//	converge export / import      documents as portable files
//	converge bench trace          replay editing traces and report speed and size
//
// Errors are one line on stderr with a non-zero exit: 2 for a usage error,
// 1 for anything else.
package main
