// Package demangle turns the C++ names of a symbol table into the names a
// programmer wrote, for backtraces: Itanium names (_Z..., MinGW's g++ and
// clang's mingw target) through github.com/ianlancetaylor/demangle, and
// Microsoft names (?..., clang's msvc target) through a decoder of our
// own, because no Go library served here reads them.
//
// # Microsoft names
//
// The decoder covers what compilers emit for functions and variables:
//
//	?poke@Widget@ns@@QEBAHH@Z   public: int __cdecl ns::Widget::poke(int) const
//	 ^^^^ ^^^^^^ ^^ ^           the name, innermost scope first, '@' ends it
//	                 Q          public member function (access and kind)
//	                  E         __ptr64 'this'
//	                   B        const 'this'
//	                    A       __cdecl
//	                     H      returns int
//	                      H     one parameter: int
//	                       @    end of the parameter list
//	                        Z   no throw specification
//
// Special names (??0 constructor, ??1 destructor, operators, ??_G
// deleting destructors), templates (?$name@args@), name and parameter
// back-references (digits), pointers, references (&, &&), cv-qualifiers,
// classes, structs, unions, enums, function pointers and integer template
// arguments are read. Anything else (RTTI descriptors, string literals,
// member pointers, CLI names) is reported as not demangled, and the
// caller shows the name as it is.
//
// The output leaves out what a backtrace does not need: access, calling
// convention and __ptr64 ("ns::Widget::poke(int) const"); a template
// function keeps its return type as c++filt prints Itanium names.
//
// The decoder follows the house rules for decoders: a cursor that never
// reads past the name, a depth bound on nested types, a bound on the
// output's length, typed errors, and FuzzMSVC. Names longer than MaxName
// are not demangled.
package demangle
