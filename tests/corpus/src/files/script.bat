@echo off
rem script.bat: cmd.exe's builtins only (no child processes): arithmetic,
rem substrings, delayed expansion, loops, calls, files and folders.
setlocal enabledelayedexpansion
set /a n=6*7
echo n=%n%
set s=HelloWorld
echo %s:~0,5% %s:~5%
echo %s:World=There%
for /l %%i in (1,1,4) do (
  set /a sq=%%i*%%i
  echo square %%i = !sq!
)
call :sub one two
if exist fruit.txt (echo fruit.txt exists) else (echo fruit.txt missing)
if not exist nothere.txt echo nothere.txt missing
mkdir d1
copy fruit.txt d1\c.txt >nul
ren d1\c.txt e.txt
dir /b /o:n d1
type d1\e.txt
del d1\e.txt
rmdir d1
if exist d1 (echo d1 still there) else (echo d1 removed)
if "%n%"=="42" echo equal
if /i "ABC"=="abc" echo case-insensitive equal
set count=0
for %%w in (red green blue) do set /a count+=1
echo words: %count%
for /f "tokens=1,2 delims=," %%a in ("left,right") do echo tokens %%b %%a
goto skip
echo not printed
:skip
echo exiting with 3
exit /b 3
:sub
echo sub got %1 and %2
goto :eof
