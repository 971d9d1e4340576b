var a = [5, 3, 9, 1, 7];
a.sort(function (x, y) { return x - y; });
WScript.Echo("sorted: " + a.join(","));
var o = { name: "corpus", n: 42, list: [1, 2, 3] };
var keys = [];
for (var k in o) keys.push(k);
WScript.Echo("keys: " + keys.join(" "));
function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
WScript.Echo("fib(20) = " + fib(20));
WScript.Echo("upper: " + "mixed Case".toUpperCase() + ", replace: " + "a-b-c".replace(/-/g, "+"));
WScript.Echo("math: " + Math.floor(7.8) + " " + Math.max(3, 9, 4) + " " + (0.1 + 0.2).toFixed(2));
try { null.x; } catch (e) { WScript.Echo("caught: " + (e instanceof TypeError)); }
var d = new Date(Date.UTC(2001, 8, 9, 1, 46, 40));
WScript.Echo("date: " + d.getUTCFullYear() + "-" + (d.getUTCMonth() + 1) + "-" + d.getUTCDate() + " " + d.getTime());
WScript.Echo("args: " + WScript.Arguments.length);
WScript.Quit(5);
